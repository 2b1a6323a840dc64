"""Cluster bootstrap over prompts: pairs of one prompt are not independent, prompts are.

Both functions resample whole prompts with :func:`scipy.stats.bootstrap` (``paired=True``
resamples the per-prompt arrays with shared indices, which is exactly a cluster bootstrap
of the ratio ``sum(num) / sum(den)``). Percentile intervals are used: they are what the
paired p-value below is consistent with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prefbench.metrics.conventions import PerPrompt

DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0


def _ratio(num, den, axis=-1):
    return num.sum(axis=axis) / den.sum(axis=axis)


def _diff(num_a, den_a, num_b, den_b, axis=-1):
    return _ratio(num_a, den_a, axis) - _ratio(num_b, den_b, axis)


def resamples_for(convention: str, n_resamples: int) -> int:
    """The resample count a convention runs with: ``n_resamples``, capped by the convention's
    ``max_resamples`` (a statistic with a curve fit per resample)."""
    from prefbench.metrics.conventions import lookup

    cap = lookup(convention).max_resamples
    return min(n_resamples, cap) if cap else n_resamples


def _global_distribution(parts: list[PerPrompt], n_resamples: int, seed: int) -> np.ndarray:
    """Statistic of each part on shared prompt resamples, shape (n_resamples, len(parts)).

    For global conventions (a sweep or a fit over all rows): every resample draws prompts with
    replacement and recomputes the statistic on their rows; NaN statistics stay NaN."""
    from prefbench.metrics.conventions import concat_rows, lookup

    n = len(parts[0].item_ids)
    rng = np.random.default_rng(seed)
    stats = [lookup(p.convention).statistic for p in parts]
    out = np.empty((n_resamples, len(parts)))
    for b in range(n_resamples):
        idx = rng.integers(0, n, n)
        for j, p in enumerate(parts):
            out[b, j] = stats[j](concat_rows([p.rows[k] for k in idx]), p.options)
    return out


def _percentile(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    dist = dist[~np.isnan(dist)]
    if not len(dist):
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    low, high = np.percentile(dist, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def cluster_bootstrap(
    stats: PerPrompt, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, confidence: float = 0.95
) -> tuple[float, float]:
    """95% CI (by default) of the accuracy, resampling prompts. NaN bounds for < 2 prompts."""
    from scipy.stats import bootstrap

    if len(stats.num) < 2:
        return float("nan"), float("nan")
    if stats.rows is not None:
        dist = _global_distribution([stats], resamples_for(stats.convention, n_resamples), seed)[:, 0]
        return _percentile(dist, confidence)
    res = bootstrap(
        (stats.num, stats.den), _ratio, paired=True, vectorized=True, n_resamples=n_resamples,
        confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass
class PairedResult:
    difference: float
    ci_low: float
    ci_high: float
    p_a_better: float  # one-sided: share of resamples where A is not better than B
    p_b_better: float
    n_common: int
    n_resamples: int

    def to_json(self) -> dict:
        return dict(self.__dict__)


def align(a: PerPrompt, b: PerPrompt) -> tuple[PerPrompt, PerPrompt]:
    """Restrict two runs to the prompts both scored, in the same order."""
    idx_b = {item: k for k, item in enumerate(b.item_ids)}
    common = [k for k, item in enumerate(a.item_ids) if item in idx_b]
    kb = [idx_b[a.item_ids[k]] for k in common]
    return a.subset(common), b.subset(kb)


def paired_bootstrap(
    a: PerPrompt, b: PerPrompt, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> PairedResult:
    """CI of accuracy(A) - accuracy(B) over shared prompt resamples, with one-sided p-values.

    ``p_a_better`` is the bootstrap share of resamples with difference <= 0 (small when A is
    reliably better); ``p_b_better`` the share with difference >= 0.
    """
    from scipy.stats import bootstrap

    if a.convention != b.convention:
        raise ValueError(f"cannot compare conventions {a.convention} and {b.convention}")
    a, b = align(a, b)
    n = len(a.item_ids)
    observed = a.accuracy - b.accuracy if n else float("nan")
    if n < 2:
        return PairedResult(observed, float("nan"), float("nan"), float("nan"), float("nan"), n, 0)
    if a.rows is not None or b.rows is not None:
        if a.rows is None or b.rows is None:
            raise ValueError("cannot compare a run whose per-prompt rows are missing")
        n_resamples = resamples_for(a.convention, n_resamples)
        both = _global_distribution([a, b], n_resamples, seed)
        dist = both[:, 0] - both[:, 1]
        low, high = _percentile(dist, confidence)
        dist = dist[~np.isnan(dist)]
        return PairedResult(float(observed), low, high, float(np.mean(dist <= 0)), float(np.mean(dist >= 0)),
                            n, n_resamples)
    res = bootstrap(
        (a.num, a.den, b.num, b.den), _diff, paired=True, vectorized=True, n_resamples=n_resamples,
        confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed),
    )
    dist = res.bootstrap_distribution
    return PairedResult(
        difference=float(observed),
        ci_low=float(res.confidence_interval.low),
        ci_high=float(res.confidence_interval.high),
        p_a_better=float(np.mean(dist <= 0)),
        p_b_better=float(np.mean(dist >= 0)),
        n_common=n,
        n_resamples=n_resamples,
    )
