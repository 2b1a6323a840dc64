"""Running a published table's rows as ordinary runs, and storing the verdicts."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from prefbench.errors import MissingDataError, MissingExtraError, PrefbenchError, UsageError  # noqa: F401
from prefbench.reproduce import Outcome, Row, Table, judge

OUT_FOLDER = "reproduce"


def _missing(table: Table, row: Row, data_dir: str | None, model: str | None) -> str | None:
    """What keeps a row from running, checked before any model loads (None: nothing known)."""
    from prefbench.data import load_dataset
    from prefbench.registry import lookup

    if row.pending:
        return f"not in this prefbench yet: {row.pending}"
    if row.needs_model and not model:
        return f"weights: {row.needs_model} (run it with --only '{row.name}' --model DIR)"
    try:
        entry = lookup(row.scorer)
    except UsageError as exc:
        return str(exc)
    if not entry.installed:
        return f"scorer {row.scorer} needs its extra: pip install 'prefbench[{entry.extra}]'"
    dataset, split, _ = table.where(row)
    try:
        load_dataset(dataset, split, data_dir, with_images=False)
    except UsageError as exc:  # MissingDataError included
        return f"data: {exc}" + _download_hint(dataset, split, data_dir)
    return None


def _download_hint(dataset: str, split: str, data_dir: str | None) -> str:
    from prefbench.data import dataset_info

    if dataset_info(dataset).download is None:
        return ""
    where = data_dir or "DIR"
    return (f"; `prefbench download {dataset} --split {split} --data-dir {where}` fetches the files"
            + ("" if data_dir else ", then pass --data-dir DIR"))


def run_row(table: Table, row: Row, data_dir: str | None, results: str, model: str | None = None,
            progress: bool = True, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> Outcome:
    """One row's outcome: its run (cached when finished) and verdict, or what kept it from running."""
    from prefbench.runner import RunConfig, run

    base = {"row": row.name, "published": row.published, "scorer": row.scorer, "model": model or row.model}
    if row.reference:
        return Outcome(**base, verdict="reference", reason=row.reference)
    missing = _missing(table, row, data_dir, model)
    if missing:
        return Outcome(**base, verdict="not run", reason=missing)
    dataset, split, convention = table.where(row)
    cfg = RunConfig(scorer=row.scorer, model=model or row.model, dataset=dataset, split=split, data_dir=data_dir,
                    rollouts=row.rollouts, params=dict(row.options), convention=convention, results_root=results,
                    progress=progress)
    try:
        record = run(cfg, log=log)
    except (MissingDataError, MissingExtraError) as exc:
        return Outcome(**base, verdict="not run", reason=str(exc))
    except PrefbenchError as exc:  # weights that are not there offline, a refused option, ...
        return Outcome(**base, verdict="not run" if _is_missing_piece(exc) else "error", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - one row's failure must not stop the table
        return Outcome(**base, verdict="error", reason=f"{type(exc).__name__}: {exc}")
    m = record.metrics
    acc, lo, hi = (m.accuracy, m.ci_low, m.ci_high) if m is not None else (None, None, None)
    run_dir = str(record.run_dir)
    if any(v is None or not math.isfinite(v) for v in (acc, lo, hi)):
        return Outcome(**base, verdict="error", reason="the run has no accuracy with a CI", run_dir=run_dir)
    out = Outcome(**base, verdict="not run", measured=acc, ci_low=lo, ci_high=hi, run_dir=run_dir)
    if row.published is None:
        out.verdict, out.reason = "reference", "no published value to compare with"
        return out
    out.verdict, out.gap = judge(row, table.scale, acc, lo, hi)
    return out


def _is_missing_piece(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(w in text for w in ("not found", "no such", "offline", "download", "provide", "not a local folder",
                                   "cannot reach", "could not find", "does not exist"))


def reproduce(table: Table, data_dir: str | None = None, results: str = "results", only: str | None = None,
              model: str | None = None, progress: bool = True,
              log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> list[Outcome]:
    """Every row's outcome (``only``: one row, by name; ``model``: that row's model instead)."""
    rows = table.rows
    if only is not None:
        rows = tuple(r for r in rows if r.name == only)
        if not rows:
            raise UsageError(f"table {table.name} has no row {only!r}; rows: {', '.join(r.name for r in table.rows)}")
    elif model is not None:
        raise UsageError("--model replaces one row's model: give the row with --only")
    out = []
    for row in rows:
        if not (row.reference or row.pending):
            log(f"[{table.name}] {row.name}")
        out.append(run_row(table, row, data_dir, results, model, progress, log))
    return out


def record(table: Table, outcomes: list[Outcome], results: str | Path) -> dict:
    """The stored form: the table's identity and every row's outcome, with run folders relative to
    ``results`` (portable, no timestamps)."""
    root = Path(results).resolve()
    rows = []
    for o in outcomes:
        d = o.to_json()
        if o.run_dir:
            try:
                d["run_dir"] = Path(o.run_dir).resolve().relative_to(root).as_posix()
            except ValueError:
                d["run_dir"] = o.run_dir
        rows.append(d)
    return {"kind": "reproduce", "table": table.name, "title": table.title, "source": table.source,
            "read": table.read, "dataset": table.dataset, "split": table.split, "convention": table.convention,
            "scale": table.scale, "notes": list(table.notes), "rows": rows}


def write(table: Table, outcomes: list[Outcome], results: str | Path) -> Path:
    """``<results>/reproduce/<table>.json``; a partial run (``--only``) updates its rows in place."""
    import json

    from prefbench.store import write_json_atomic

    path = Path(results) / OUT_FOLDER / f"{table.name}.json"
    new = record(table, outcomes, results)
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            old = None
        if isinstance(old, dict) and isinstance(old.get("rows"), list):
            mine = {r["row"]: r for r in new["rows"]}
            names = [r.name for r in table.rows]
            kept = {r.get("row"): r for r in old["rows"] if isinstance(r, dict) and r.get("row") in names}
            kept.update(mine)
            new["rows"] = [kept[n] for n in names if n in kept]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, new)
    return path


def counts(outcomes: list[Outcome] | list[Mapping]) -> dict[str, int]:
    out: dict[str, int] = {}
    for o in outcomes:
        v = o.verdict if isinstance(o, Outcome) else o.get("verdict")
        out[v] = out.get(v, 0) + 1
    return out
