"""Metrics see only human ranks and scores, never models."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from prefbench.data.model import Split
from prefbench.metrics.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, cluster_bootstrap, paired_bootstrap
from prefbench.metrics.conventions import (
    CONVENTIONS,
    Convention,
    PerPrompt,
    conventions,
    per_prompt,
    tune_tie_threshold,
)
from prefbench.metrics.conventions import lookup as lookup_convention
from prefbench.metrics.ranking import (
    anchor_outcomes,
    brier_score,
    expected_calibration_error,
    rank_correlations,
    reliability_bins,
)


def score_matrix(split: Split, scores: Mapping[tuple[str, int], float | None]) -> list[list[float]]:
    """Per-item score lists from ``{(item_id, image_index): score}``; missing -> NaN."""
    out = []
    for item in split.items:
        row = []
        for k in range(item.n_images):
            v = scores.get((item.item_id, k))
            row.append(float("nan") if v is None or (isinstance(v, float) and math.isnan(v)) else float(v))
        out.append(row)
    return out


def accuracy_for(
    split: Split,
    scores: Mapping[tuple[str, int], float | None],
    convention: str | None = None,
    tie_threshold: float = 0.0,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[dict, PerPrompt]:
    """Flat metrics dict (accuracy, ci_low, ci_high, n_prompts, n_pairs, ...) and per-prompt stats."""
    convention = convention or split.convention
    matrix = score_matrix(split, scores)
    stats = per_prompt(
        convention,
        [it.item_id for it in split.items],
        [it.ranks for it in split.items],
        matrix,
        [it.label_0 for it in split.items],
        tie_threshold,
    )
    low, high = cluster_bootstrap(stats, n_resamples=n_resamples, seed=seed)
    metrics = {
        "convention": convention,
        "accuracy": stats.accuracy,
        "ci_low": low,
        "ci_high": high,
        "n_prompts": len(stats.item_ids),
        "n_pairs": stats.n_pairs,
        "n_images": int(sum(len(r) for r in matrix)),
        "n_missing_scores": int(sum(np.isnan(r).sum() for r in map(np.asarray, matrix))),
        "bootstrap_resamples": n_resamples,
        "bootstrap_seed": seed,
    }
    if "tie_threshold" in lookup_convention(convention).options:
        metrics["tie_threshold"] = tie_threshold
    metrics.update(rank_correlations([it.ranks for it in split.items], matrix))
    return metrics, stats


__all__ = [
    "CONVENTIONS", "Convention", "conventions", "lookup_convention", "DEFAULT_RESAMPLES", "DEFAULT_SEED", "PerPrompt", "accuracy_for", "anchor_outcomes",
    "brier_score", "cluster_bootstrap", "expected_calibration_error", "paired_bootstrap", "per_prompt",
    "rank_correlations", "reliability_bins", "score_matrix", "tune_tie_threshold",
]
