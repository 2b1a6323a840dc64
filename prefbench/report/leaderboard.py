"""The leaderboard: runs grouped by dataset/split/convention, labelled, sorted best first, with
every paired comparison inside a group, the notes a group needs, and the Mean@k series.

Deterministic: explicit tie-breaks and a fixed bootstrap seed, so the same runs always give the
same leaderboard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prefbench.metrics import DEFAULT_RESAMPLES
from prefbench.report.pairing import Pair, compare

if TYPE_CHECKING:
    from prefbench.report.runs import RunView

#: alpha for the leaderboard's "not significantly below the best" marker
MARK_ALPHA = 0.05


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
    """The groups of ranked runs, the runs not ranked, and the sections shown beside them."""

    groups: list[Group]
    unranked: list[RunView]
    n_runs: int
    n_resamples: int
    #: generator-benchmark runs (report/generators.py), shown in their own section
    generators: list = field(default_factory=list)
    #: published tables with their verdicts (``prefbench reproduce``; report/reproduce.py)
    tables: list = field(default_factory=list)



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
