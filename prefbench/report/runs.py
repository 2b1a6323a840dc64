"""Reads the run store for reports and checks: run.json files only, validated, grouped by split.

Everything here is deterministic: runs are found in sorted path order, sorted by accuracy
with explicit tie-breaks, and paired bootstraps use a fixed seed, so the same runs always give
the same leaderboard.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefbench.errors import DataError, OtherKindError, UsageError  # noqa: F401  (OtherKindError re-exported)
from prefbench.metrics import DEFAULT_RESAMPLES, DEFAULT_SEED, PerPrompt, paired_bootstrap
from prefbench.record import RUN_SCHEMA_VERSION, GitInfo, Metrics, RunRecord
from prefbench.store import RUN_FILE, read_record

#: alpha for the leaderboard's "not significantly below the best" marker
MARK_ALPHA = 0.05
_RANKED_FIELDS = ("convention", "accuracy", "ci_low", "ci_high", "n_prompts", "n_pairs")


def _num(x: Any) -> float | None:
    """A finite float, or None (run.json stores NaN as NaN or null)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


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
    view.accuracy, view.ci_low, view.ci_high = (_num(getattr(metrics, k)) for k in ("accuracy", "ci_low", "ci_high"))
    view.n_prompts, view.n_pairs = metrics.n_prompts, metrics.n_pairs
    view.counts = rec.counts.to_json()
    view.images_per_s = _num(rec.throughput.images_per_s if rec.throughput else None)
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


def _sort_key(r: RunView):
    return (-(r.accuracy if r.accuracy is not None else -1.0), -(r.ci_low if r.ci_low is not None else -1.0),
            r.scorer, r.model or "", r.path)


def _set(params: dict) -> dict:
    """The parameters with a value: a null one is an option left at its default, or one that a
    run made by an older prefbench recorded (``share_images=null``), never worth a label."""
    return {k: v for k, v in params.items() if v is not None}


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(_set(params).items()))


def assign_labels(runs: list[RunView]) -> None:
    """Short labels: scorer (+ model), plus the parameters that tell apart runs sharing both."""
    by_key: dict[tuple, list[RunView]] = {}
    for r in runs:
        by_key.setdefault((r.scorer, r.model), []).append(r)
    for (scorer, _model), same in by_key.items():
        keys = sorted({k for r in same for k in r.params})
        differing = [k for k in keys if len({json.dumps(r.params.get(k), sort_keys=True) for r in same}) > 1]
        for r in same:
            r.variant = scorer + (f" ({_params_text({k: r.params.get(k) for k in differing})})" if differing else "")
    seen: dict[tuple, int] = {}
    for r in runs:
        seen[(r.variant, r.model)] = seen.get((r.variant, r.model), 0) + 1
    for r in runs:  # same configuration stored twice: the folder tells them apart
        if seen[(r.variant, r.model)] > 1:
            r.variant += f" [{r.path.rsplit('/', 1)[-1]}]"
        scorer, _, rest = r.variant.partition(" ")
        r.label = scorer + (f" · {r.model}" if r.model else "") + (f" {rest}" if rest else "")


@dataclass
class Pair:
    """Paired bootstrap of row - column (``p_row_better`` small when the row is reliably better)."""

    difference: float
    ci_low: float | None
    ci_high: float | None
    p_row_better: float | None
    p_col_better: float | None
    n_common: int


@dataclass
class Group:
    """The runs of one dataset/split/convention: ranked ones sorted best first."""

    dataset: str
    split: str
    convention: str
    runs: list[RunView]
    pairs: dict[tuple[int, int], Pair] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.dataset} / {self.split}"

    @property
    def anchor(self) -> str:
        return f"{self.dataset}-{self.split}-{self.convention}".replace("_", "-")

    def mark(self, i: int) -> str:
        """'best' for the top row, 'tied' when not significantly below it, else ''."""
        if i == 0:
            return "best"
        pair = self.pairs.get((0, i))
        if pair and pair.p_row_better is not None and pair.p_row_better >= MARK_ALPHA:
            return "tied"
        return ""


@dataclass
class Leaderboard:
    groups: list[Group]
    unranked: list[RunView]
    n_runs: int
    n_resamples: int
    #: generator-benchmark runs (report/generators.py), shown in their own section
    generators: list = field(default_factory=list)
    #: published tables with their verdicts (``prefbench reproduce``; report/reproduce.py)
    tables: list = field(default_factory=list)


@dataclass(frozen=True)
class Side:
    """What pairing two results prompt by prompt needs of each: a run or a baseline entry."""

    dataset: str
    split: str
    convention: str | None
    content_hash: str | None
    has_per_prompt: bool

    @classmethod
    def of(cls, run: RunView) -> Side:
        return cls(run.dataset, run.split, run.convention, run.content_hash, run.per_prompt() is not None)


def pairing_problem(a: Side, b: Side) -> str | None:
    """Why two results cannot be paired prompt by prompt, or None when they can: the one rule
    ``compare``, the leaderboard and ``check`` share. Pairing needs the same split, the same
    convention, the same data (equal, known content hashes) and per-prompt statistics on both."""
    if (a.dataset, a.split) != (b.dataset, b.split):
        return "different splits"
    if a.convention != b.convention:
        return "different conventions"
    if a.content_hash is None or a.content_hash != b.content_hash:
        return "different data"
    if not (a.has_per_prompt and b.has_per_prompt):
        return "no per-prompt data"
    return None


def unpaired_reason(a: RunView, b: RunView) -> str | None:
    """Why two runs cannot be paired, or None when they can (:func:`pairing_problem`)."""
    return pairing_problem(Side.of(a), Side.of(b))


def compare(a: RunView, b: RunView, n_resamples: int, seed: int = DEFAULT_SEED) -> Pair | None:
    """Paired bootstrap of a - b, or None when the runs cannot be paired (see unpaired_reason)."""
    if unpaired_reason(a, b):
        return None
    pa, pb = a.per_prompt(), b.per_prompt()
    res = paired_bootstrap(pa, pb, n_resamples=n_resamples, seed=seed)
    return Pair(res.difference, _num(res.ci_low), _num(res.ci_high), _num(res.p_a_better), _num(res.p_b_better),
                res.n_common)


def limit_notes(members: list[RunView]) -> list[str]:
    """A note per ``--limit``: those runs scored the split's first N items only."""
    by_limit: dict[int, list[str]] = {}
    for i, m in enumerate(members):
        limit = m.record.dataset.limit
        if isinstance(limit, int) and not isinstance(limit, bool):
            by_limit.setdefault(limit, []).append(f"#{i + 1}")
    return [f"{'run' if len(rows) == 1 else 'runs'} {', '.join(rows)}: --limit {n}, so only the split's first "
            f"{n} items were scored; the accuracy is not the whole split's" for n, rows in sorted(by_limit.items())]


def build_leaderboard(runs: list[RunView], n_resamples: int = DEFAULT_RESAMPLES) -> Leaderboard:
    """Group ranked runs by dataset/split/convention, sort them and run every paired bootstrap."""
    grouped: dict[tuple[str, str, str], list[RunView]] = {}
    unranked = []
    for r in runs:
        if r.ranked:
            grouped.setdefault((r.dataset, r.split, r.convention or ""), []).append(r)
        else:
            unranked.append(r)
    groups = []
    for (dataset, split, convention), members in sorted(grouped.items()):
        members.sort(key=_sort_key)
        assign_labels(members)
        group = Group(dataset, split, convention, members)
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                pair = compare(members[i], members[j], n_resamples)
                if pair is None:
                    continue
                group.pairs[(i, j)] = pair
                group.pairs[(j, i)] = Pair(-pair.difference, None if pair.ci_high is None else -pair.ci_high,
                                           None if pair.ci_low is None else -pair.ci_low, pair.p_col_better,
                                           pair.p_row_better, pair.n_common)
        hashes = sorted({m.content_hash or "unknown" for m in members})
        if len(hashes) > 1:
            group.notes.append(f"these runs scored {len(hashes)} different versions of the data (content hashes "
                               f"{', '.join(h[:8] for h in hashes)}); only runs on the same data are compared")
        notes = sorted({str(m.record.dataset.note or "") for m in members} - {""})
        group.notes.extend(notes)
        group.notes.extend(limit_notes(members))
        groups.append(group)
    unranked.sort(key=lambda r: r.path)
    assign_labels(unranked)
    return Leaderboard(groups, unranked, len(runs), n_resamples)


@dataclass
class MeanAtK:
    """Runs that differ only in ``rollouts``: accuracy as a function of k (paper's Mean@k)."""

    label: str
    points: list[tuple[int, RunView]]


def mean_at_k_series(group: Group) -> list[MeanAtK]:
    series: dict[str, list[RunView]] = {}
    for r in group.runs:
        if r.rollouts is None:
            continue
        rest = {k: v for k, v in _set(r.params).items() if k != "rollouts"}
        key = json.dumps([r.scorer, r.model, r.content_hash, rest], sort_keys=True, default=str)
        series.setdefault(key, []).append(r)
    out = []
    for key in sorted(series):
        by_k: dict[int, RunView] = {}
        for r in sorted(series[key], key=lambda r: r.path):
            by_k.setdefault(r.rollouts, r)
        if len(by_k) < 2:
            continue
        first = series[key][0]
        out.append(MeanAtK(first.scorer + (f" · {first.model}" if first.model else ""), sorted(by_k.items())))
    bases = [m.label for m in out]
    for m in out:
        if bases.count(m.label) > 1:  # same scorer and model: say which options differ
            r = m.points[0][1]
            m.label += f" ({_params_text({k: v for k, v in r.params.items() if k not in ('rollouts', 'model')})})"
    return out


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
