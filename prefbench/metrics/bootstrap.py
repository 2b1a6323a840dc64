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


def cluster_bootstrap(
    stats: PerPrompt, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, confidence: float = 0.95
) -> tuple[float, float]:
    """95% CI (by default) of the accuracy, resampling prompts. NaN bounds for < 2 prompts."""
    from scipy.stats import bootstrap

    if len(stats.num) < 2:
        return float("nan"), float("nan")
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
    ids = [a.item_ids[k] for k in common]
    return (
        PerPrompt(a.convention, ids, a.num[common], a.den[common], a.n_pairs),
        PerPrompt(b.convention, ids, b.num[kb], b.den[kb], b.n_pairs),
    )


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
