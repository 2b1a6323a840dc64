"""Reads the run store for reports and checks: run.json files only, validated into
:class:`RunView` objects, found in sorted path order.

The leaderboard built from them is :mod:`prefbench.report.leaderboard`; the pairing rule and
the paired comparison are :mod:`prefbench.report.pairing` (both re-exported here, where callers
found them before the split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefbench.errors import DataError, OtherKindError, UsageError  # noqa: F401  (OtherKindError re-exported)
from prefbench.metrics import PerPrompt
from prefbench.record import RUN_SCHEMA_VERSION, GitInfo, Metrics, RunRecord
from prefbench.report.leaderboard import (  # noqa: F401  (re-exported)
    MARK_ALPHA,
    Group,
    Leaderboard,
    MeanAtK,
    assign_labels,
    build_leaderboard,
    limit_notes,
    mean_at_k_series,
)
from prefbench.report.pairing import Pair, Side, compare, finite, pairing_problem, unpaired_reason  # noqa: F401  (re-exported)
from prefbench.store import RUN_FILE, read_record

_RANKED_FIELDS = ("convention", "accuracy", "ci_low", "ci_high", "n_prompts", "n_pairs")


@dataclass
class RunView:
    """One run as the report sees it; ``path`` is the run folder relative to the results root."""

    path: str
    file: Path
    record: RunRecord
    scorer: str
    model: str | None
    params: dict
    dataset: str
    split: str
    status: str
    convention: str | None = None
    content_hash: str | None = None
    accuracy: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_prompts: int | None = None
    n_pairs: int | None = None
    counts: dict = field(default_factory=dict)
    images_per_s: float | None = None
    date: str = ""
    commit: str = ""
    label: str = ""  # scorer · model (options that tell it apart from its neighbours)
    variant: str = ""  # the same without the model (tables have a model column)
    _per_prompt: PerPrompt | None = field(default=None, repr=False)

    @property
    def ranked(self) -> bool:
        return self.status == "complete" and self.accuracy is not None

    @property
    def rollouts(self) -> int | None:
        k = self.params.get("rollouts")
        return k if isinstance(k, int) and not isinstance(k, bool) and k >= 1 else None

    @property
    def reliability(self) -> list[dict]:
        return [b for b in self.record.reliability or [] if isinstance(b, dict)]

    @property
    def metrics(self) -> Metrics:
        return self.record.metrics if self.record.metrics is not None else Metrics()

    @property
    def tokens(self) -> dict | None:
        """Token accounting of a run that has it (prompt tokens recorded): totals, per-second rates,
        the model's parameter count and the FLOP/s that implies (about 2 per parameter per token)."""
        tp = self.record.throughput
        if tp is None or not isinstance(tp.prompt_tokens, (int, float)):
            return None
        out = {k: getattr(tp, k) for k in ("prompt_tokens", "vision_tokens", "generated_tokens", "prompt_tokens_per_s",
                                           "vision_tokens_per_s", "generated_tokens_per_s", "setup_s", "wall_s")}
        params = _find(self.record.scorer_summary, "n_parameters")
        out["n_parameters"] = params
        rate = (out["prompt_tokens_per_s"] or 0) + (out["generated_tokens_per_s"] or 0)
        out["model_flop_per_s"] = 2.0 * params * rate if isinstance(params, (int, float)) and rate else None
        return out

    def per_prompt(self) -> PerPrompt | None:
        """Per-prompt sufficient statistics (None when run.json has none)."""
        if self._per_prompt is None and self.ranked and isinstance(self.record.per_prompt, dict):
            self._per_prompt = per_prompt_from(self.record.per_prompt, self.convention, self.n_pairs or 0,
                                               self.file, "per_prompt")
        return self._per_prompt


def per_prompt_from(data: Any, convention: str | None, n_pairs: int, file: Path, where: str) -> PerPrompt:
    """Validate and build a :class:`PerPrompt` from its JSON block; errors name the file."""
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("item_ids", "num", "den")):
        raise DataError(f"{where} needs lists item_ids, num and den", file)
    if not len(data["item_ids"]) == len(data["num"]) == len(data["den"]):
        raise DataError(f"{where}: item_ids, num and den differ in length", file)
    try:
        return PerPrompt.from_json(convention or "", data, n_pairs)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: {exc}", file) from None


def _text(value: Any, name: str, file: Path) -> str:
    if not isinstance(value, str) or not value:
        raise DataError(f"field {name!r} must be a non-empty string", file)
    return value


def _missing(name: str, file: Path) -> DataError:
    return DataError(f"not a usable run record: missing field {name!r}", file)


def run_view(file: Path, root: Path) -> RunView:
    """Validate one run.json; any problem is a :class:`DataError` naming the file (an
    :class:`OtherKindError` for a record that is not a scoring run)."""
    rec = read_record(file)
    if rec.kind != "scoring":
        what = {"generators": "a generator benchmark (prefbench bench-generators)",
                "shard": "a shard of a run (prefbench merge joins the shards into one run)"}.get(
                    rec.kind, f"a {rec.kind!r} record")
        raise OtherKindError(f"{what}, not a scoring run", file)
    if rec.newer_than_this:
        raise DataError(f"schema_version {rec.schema_version!r} is not one this prefbench reads "
                        f"(<= {RUN_SCHEMA_VERSION}); upgrade prefbench", file)
    for block, name in ((rec.scorer, "scorer.name"), (rec.dataset, "dataset.name"), (rec.dataset, "dataset.split")):
        if block is None or not block.has(name.split(".")[1]):
            raise _missing(name, file)
    if not rec.has("status"):
        raise _missing("status", file)
    scorer, dataset = _text(rec.scorer.name, "scorer.name", file), _text(rec.dataset.name, "dataset.name", file)
    split, status = _text(rec.dataset.split, "dataset.split", file), _text(rec.status, "status", file)
    params = rec.scorer.resolved or {}
    if not isinstance(params, dict):
        raise DataError("field 'scorer.resolved' must be an object", file)
    model = rec.model_id
    git = rec.git if rec.git is not None else GitInfo()
    commit = str(git.commit or "")[:8] + ("*" if git.dirty and git.commit else "")
    view = RunView(
        path=file.parent.relative_to(root).as_posix() or ".", file=file, record=rec, scorer=scorer,
        model=str(model) if model is not None else None, params=params, dataset=dataset, split=split,
        status=status, content_hash=rec.dataset.content_hash,
        date=str(rec.finished or rec.created or "")[:10], commit=commit,
        counts=rec.counts.to_json() if rec.counts is not None else {},
    )
    if status != "complete":
        return view
    metrics = rec.metrics
    if metrics is None:
        raise _missing("metrics", file)
    for key in _RANKED_FIELDS:
        if not metrics.has(key):
            raise _missing(f"metrics.{key}", file)
    if not isinstance(metrics.convention, str):
        raise DataError("field 'metrics.convention' must be a string", file)
    for key in ("accuracy", "ci_low", "ci_high"):
        value = getattr(metrics, key)
        if value is not None and not isinstance(value, (int, float)):
            raise DataError(f"field 'metrics.{key}' must be a number", file)
    if rec.counts is None:
        raise _missing("counts", file)
    view.convention = metrics.convention
    view.accuracy, view.ci_low, view.ci_high = (finite(getattr(metrics, k)) for k in ("accuracy", "ci_low", "ci_high"))
    view.n_prompts, view.n_pairs = metrics.n_prompts, metrics.n_pairs
    view.counts = rec.counts.to_json()
    view.images_per_s = finite(rec.throughput.images_per_s if rec.throughput else None)
    return view


def run_files(root: Path) -> list[Path]:
    """Every run.json under ``root``, sorted by path (none inside hidden folders)."""
    return sorted(p for p in root.rglob(RUN_FILE) if not any(part.startswith(".") for part in p.parts[-3:]))


def find_runs(results: str | Path) -> tuple[Path, list[RunView]]:
    """Every run.json under ``results`` (sorted by path). Raises UsageError when there is none."""
    root = Path(results)
    if not root.is_dir():
        raise UsageError(f"{root}: no such results folder")
    files = run_files(root)
    if not files:
        raise UsageError(f"{root}: no run.json files found (run `prefbench run` first)")
    views = []
    for f in files:
        try:
            views.append(run_view(f, root))
        except OtherKindError:  # generator benchmarks: the report reads them on their own (report/generators.py)
            continue
    return root, views


def _find(obj, key: str, depth: int = 3):
    """``key``'s value in nested dicts (a scorer summary holds its engine's), or None."""
    if not isinstance(obj, dict) or depth < 0:
        return None
    if key in obj:
        return obj[key]
    for v in obj.values():
        found = _find(v, key, depth - 1)
        if found is not None:
            return found
    return None
