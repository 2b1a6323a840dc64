"""The pairing rule and the paired comparison of two results.

Two results (runs, or a run and a baseline entry) can be compared prompt by prompt only when
:func:`pairing_problem` finds nothing against it; ``compare``, the leaderboard and ``check``
share that one rule. :func:`compare` runs the paired bootstrap of two runs that pass it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefbench.metrics import DEFAULT_SEED, paired_bootstrap

if TYPE_CHECKING:
    from prefbench.report.runs import RunView


def finite(x: Any) -> float | None:
    """A finite float, or None (run.json stores NaN as NaN or null)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


@dataclass
class Pair:
    """Paired bootstrap of row - column (``p_row_better`` small when the row is reliably better)."""

    difference: float
    ci_low: float | None
    ci_high: float | None
    p_row_better: float | None
    p_col_better: float | None
    n_common: int


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
    return Pair(res.difference, finite(res.ci_low), finite(res.ci_high), finite(res.p_a_better),
                finite(res.p_b_better),
                res.n_common)
