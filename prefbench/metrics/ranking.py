"""Per-item rank correlations and calibration of probabilistic pairwise output."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def rank_correlations(ranks: Sequence[Sequence[float]], scores: Sequence[Sequence[float]]) -> dict:
    """Mean per-item Kendall tau-b and Spearman rho between scores and human preference.

    Human rank 1 is best, so ranks are negated. Missing scores (NaN) are dropped within an
    item; items where either side is constant (tau undefined) are left out and counted.
    """
    from scipy.stats import kendalltau, spearmanr

    taus, rhos, undefined = [], [], 0
    for r, s in zip(ranks, scores, strict=True):
        r, s = np.asarray(r, float), np.asarray(s, float)
        keep = ~np.isnan(s)
        r, s = r[keep], s[keep]
        if len(r) < 2 or np.ptp(r) == 0 or np.ptp(s) == 0:
            undefined += 1
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            taus.append(kendalltau(-r, s, variant="b").statistic)
            rhos.append(spearmanr(-r, s).statistic)
    return {
        "kendall_tau_b": float(np.mean(taus)) if taus else float("nan"),
        "spearman": float(np.mean(rhos)) if rhos else float("nan"),
        "n_items_correlation_undefined": undefined,
    }


def brier_score(prob: Sequence[float], outcome: Sequence[float]) -> float:
    """Mean squared error of probabilities against 0/1 outcomes."""
    p, y = np.asarray(prob, float), np.asarray(outcome, float)
    return float(np.mean((p - y) ** 2)) if len(p) else float("nan")


def expected_calibration_error(prob: Sequence[float], outcome: Sequence[float], n_bins: int = 10) -> float:
    """ECE with equal-width bins on [0, 1]: sum over bins of (share) x |mean p - mean y|."""
    p, y = np.asarray(prob, float), np.asarray(outcome, float)
    if not len(p):
        return float("nan")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return float(ece)


def reliability_bins(prob: Sequence[float], outcome: Sequence[float], n_bins: int = 10) -> list[dict]:
    """Per-bin mean probability, observed frequency and count (for reliability diagrams)."""
    p, y = np.asarray(prob, float), np.asarray(outcome, float)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1) if len(p) else np.array([], int)
    out = []
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            out.append({"bin": b, "mean_prob": float(p[mask].mean()), "freq": float(y[mask].mean()),
                        "count": int(mask.sum())})
    return out


def anchor_outcomes(ranks: Sequence[float], probs: Sequence[float], anchor: int) -> tuple[list[float], list[float]]:
    """Pair each non-anchor image's P(image beats anchor) with the human outcome (ties skipped)."""
    p_out, y_out = [], []
    for k, (r, p) in enumerate(zip(ranks, probs, strict=True)):
        if k == anchor or r == ranks[anchor] or p is None or np.isnan(p):
            continue
        p_out.append(float(p))
        y_out.append(1.0 if r < ranks[anchor] else 0.0)
    return p_out, y_out
