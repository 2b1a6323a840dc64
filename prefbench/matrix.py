"""``prefbench run --scorer a,b --dataset x,y [--split s,t]``: every combination, as ordinary runs.

Each cell is one :func:`prefbench.runner.run` call with the command's other options, so it is
stored, resumable and answered from cache like any run (there is no second life cycle here).
A cell that fails (data not there, a split the dataset lacks, a model that does not load, no
image scored) does not stop the others: it is reported at the end with its reason, and the
command exits 1. Mistyped scorer or dataset names are refused before anything runs.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass


def split_list(text: str | None) -> list[str]:
    """``"a, b,,a"`` -> ``["a", "b"]``: the names of a comma-separated option, in order, once each."""
    out: list[str] = []
    for part in (text or "").split(","):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def is_matrix(scorer: str | None, dataset: str | None, split: str | None, model: str | None = None) -> bool:
    """Whether a ``prefbench run`` names more than one scorer, dataset, split or model."""
    import os

    if model and os.path.exists(model):
        model = None  # a path with a comma in it is one model
    return any(len(split_list(v)) > 1 for v in (scorer, dataset, split, model))


def paired(option: str, value: str | None, names: list[str], of: str) -> list[str | None]:
    """``value`` for each of ``names``: one value for all, or a comma list with one per name (a
    value that is an existing path is one value, commas and all)."""
    import os

    from prefbench.errors import UsageError

    if value is None or os.path.exists(value) or "," not in value:
        return [value] * len(names)
    values = [v.strip() or None for v in value.split(",")]  # an empty entry: that one's default
    if len(values) != len(names):
        raise UsageError(f"{option} has {len(values)} values for {len(names)} {of} ({', '.join(names)}): give one "
                         f"for all, or one per {of.rstrip('s')} in the same order")
    return values


@dataclass(frozen=True)
class Cell:
    scorer: str
    dataset: str
    split: str
    model: str | None = None
    data_dir: str | None = None

    @property
    def label(self) -> str:
        return f"{self.scorer}" + (f" ({self.model})" if self.model else "") + f" on {self.dataset}/{self.split}"


def cells(scorers: list[str], datasets: list[str], splits: list[str], model: str | None = None,
          data_dir: str | None = None) -> list[Cell]:
    """Every (scorer, dataset, split); no split given: each dataset's default. ``model`` and
    ``data_dir``: one for all, or comma lists with one per scorer / per dataset. Unknown scorer or
    dataset names, and lists of the wrong length, raise a :class:`UsageError` here, before any cell runs."""
    from prefbench.data import dataset_info
    from prefbench.errors import UsageError
    from prefbench.registry import lookup

    if not scorers:
        raise UsageError("--scorer names no scorer")
    for name in scorers:
        lookup(name)  # an unknown name lists the close matches
    for name in datasets:
        dataset_info(name)
    if not datasets:
        raise UsageError("--dataset names no dataset")
    models = dict(zip(scorers, paired("--model", model, scorers, "scorers")))
    dirs = dict(zip(datasets, paired("--data-dir", data_dir, datasets, "datasets")))
    return [Cell(s, d, sp, models[s], dirs[d]) for d in datasets for sp in (splits or [dataset_info(d).default_split])
            for s in scorers]


def run_matrix(base_cfg, scorers: list[str], datasets: list[str], splits: list[str],
               log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> list[dict]:
    """Run every cell; one dict per cell: the run's flat summary, or ``failed`` with the reason."""
    from prefbench.errors import PrefbenchError, UsageError
    from prefbench.runner import flat_summary, run

    if base_cfg.out:
        raise UsageError("--out names one run folder; a matrix writes one per cell under --results")
    todo = cells(scorers, datasets, splits, base_cfg.model, base_cfg.data_dir)
    out = []
    for k, cell in enumerate(todo, 1):
        log(f"[{k}/{len(todo)}] {cell.label}")
        cfg = dataclasses.replace(base_cfg, scorer=cell.scorer, dataset=cell.dataset, split=cell.split,
                                  model=cell.model, data_dir=cell.data_dir, params=dict(base_cfg.params),
                                  base_urls=list(base_cfg.base_urls))
        row = {"scorer": cell.scorer, "model": cell.model, "dataset": cell.dataset, "split": cell.split}
        try:
            rec = run(cfg, log=log)
        except KeyboardInterrupt:
            raise
        except PrefbenchError as exc:
            out.append({**row, "failed": str(exc)})
            log(f"[{k}/{len(todo)}] failed: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - one broken cell must not stop the matrix
            out.append({**row, "failed": f"{type(exc).__name__}: {exc}"})
            log(f"[{k}/{len(todo)}] failed: {type(exc).__name__}: {exc}")
            continue
        summary = flat_summary(rec)
        c = rec.counts
        if c.ok == 0:
            summary["failed"] = (f"no image scored ({c.error} error, {c.unparsed} unparsed, "
                                 f"{c.missing or 0} missing); see {rec.run_dir}/samples.jsonl")
        out.append(summary)
    return out


def _fmt(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def leaderboard_text(rows: list[dict]) -> str:
    """One table per dataset split, best first, then the failed cells with their reasons."""
    done = [r for r in rows if "failed" not in r or r.get("run_dir")]
    lines = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in done:
        groups.setdefault((r["dataset"], r["split"]), []).append(r)
    for (dataset, split), group in groups.items():
        lines += [f"{dataset}/{split} — {group[0].get('convention')} convention, 95% cluster-bootstrap CIs",
                  f"  {'scorer':<18} {'model':<28} {'accuracy':>8}  {'95% CI':<15} {'ok/unparsed/error':<18}"]
        for r in sorted(group, key=lambda r: -(r["accuracy"] if r.get("accuracy") is not None else -1)):
            c = r["counts"]
            model = str(r.get("model") or "-")
            model = model if len(model) <= 28 else "..." + model[-25:]
            lines.append(f"  {r['scorer']:<18} {model:<28} {_fmt(r.get('accuracy')):>8}  "
                         f"[{_fmt(r.get('ci_low'))}, {_fmt(r.get('ci_high'))}] {c['ok']}/{c['unparsed']}/{c['error']}"
                         + ("  [cached]" if r.get("cached") else ""))
        lines.append("")
    failed = [r for r in rows if "failed" in r]
    ran = len(rows) - len(failed)
    lines.append(f"{ran} of {len(rows)} cells ran" + (f"; {len(failed)} failed:" if failed else ""))
    for r in failed:
        model = f" ({r['model']})" if r.get("model") else ""
        lines.append(f"  {r['scorer']}{model} on {r['dataset']}/{r['split']}: {r['failed']}")
    return "\n".join(lines)
