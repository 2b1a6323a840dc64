"""Metrics see only human ranks and scores, never models.

They read a split structurally (:class:`Labelled`: items with ids, human ranks, labels and scores,
and the split's default convention) and import nothing from ``prefbench.data``: a dataset is one
source of labelled items, not a dependency of the metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from prefbench.metrics.bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    cluster_bootstrap,
    paired_bootstrap,
    resamples_for,
)
from prefbench.metrics.conventions import (
    CONVENTIONS,
    Convention,
    ItemData,
    PerPrompt,
    conventions,
    per_prompt,
    per_prompt_data,
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


class Labelled(Protocol):
    """What the metrics read of a split (:class:`prefbench.data.Split` is one): its items, each
    with ``item_id``, ``n_images``, human ``ranks``, ``label_0``/``label``, ``human`` scores and
    ``elements``, and the convention it is scored under by default."""

    items: Sequence[Any]
    convention: str


def score_matrix(split: Labelled, scores: Mapping[tuple[str, int], float | None]) -> list[list[float]]:
    """Per-item score lists from ``{(item_id, image_index): score}``; missing -> NaN."""
    out = []
    for item in split.items:
        row = []
        for k in range(item.n_images):
            v = scores.get((item.item_id, k))
            row.append(float("nan") if v is None or (isinstance(v, float) and math.isnan(v)) else float(v))
        out.append(row)
    return out


def item_data(split: Labelled, matrix: list[list[float]], options: dict | None = None,
              outputs: Mapping | None = None) -> list[ItemData]:
    """One :class:`ItemData` per item: its labels, the score row, and the judge outputs that
    ``outputs`` holds (``element_scores``: ``{(item_id, k): {element: p}}``; ``verdicts``:
    ``{item_id: {"verdict": text} or {"forward": ..., "reverse": ...}}``; ``order_probs``:
    ``{(item_id, k): {"anchor_first": p, "candidate_first": p}}``, a pairwise scorer's
    P(image k beats the anchor) per presentation order)."""
    outputs = outputs or {}
    elements = outputs.get("element_scores") or {}
    verdicts = outputs.get("verdicts") or {}
    orders = outputs.get("order_probs") or {}
    out = []
    for item, row in zip(split.items, matrix, strict=True):
        es = [elements.get((item.item_id, k)) for k in range(item.n_images)] if elements else None
        out.append(ItemData(
            item.item_id, np.asarray(item.ranks, float), np.asarray(row, float), item.label_0, item.label,
            None if item.human is None else np.asarray(item.human, float), item.elements, es,
            verdicts.get(item.item_id), dict(options or {}),
            [orders.get((item.item_id, k)) for k in range(item.n_images)] if orders else None,
        ))
    return out


def accuracy_for(
    split: Labelled,
    scores: Mapping[tuple[str, int], float | None],
    convention: str | None = None,
    tie_threshold: float = 0.0,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    outputs: Mapping | None = None,
) -> tuple[dict, PerPrompt]:
    """Flat metrics dict (accuracy, ci_low, ci_high, n_prompts, n_pairs, ...) and per-prompt stats.

    ``accuracy`` is the convention's headline, whatever it measures (``measure`` says what:
    an accuracy, a human score, a correlation); ``outputs`` carries a judge's verdicts or element
    predictions for the conventions that read them (see :func:`item_data`)."""
    convention = convention or split.convention
    rule = lookup_convention(convention)
    matrix = score_matrix(split, scores)
    datas = item_data(split, matrix, {"tie_threshold": tie_threshold}, outputs)
    stats = per_prompt_data(convention, datas)
    resamples = resamples_for(convention, n_resamples)
    low, high = cluster_bootstrap(stats, n_resamples=resamples, seed=seed)
    metrics = {
        "convention": convention,
        "measure": rule.measure,
        "accuracy": stats.accuracy,
        "ci_low": low,
        "ci_high": high,
        "n_prompts": len(stats.item_ids),
        "n_pairs": stats.n_pairs,
        "n_images": int(sum(len(r) for r in matrix)),
        "n_missing_scores": int(sum(np.isnan(r).sum() for r in map(np.asarray, matrix))),
        "bootstrap_resamples": resamples,
        "bootstrap_seed": seed,
    }
    if "tie_threshold" in rule.options:
        metrics["tie_threshold"] = tie_threshold
    if rule.summary is not None:
        summary = rule.summary(datas)
        metrics.update(summary)
        metrics["summary_keys"] = list(summary)
    metrics.update(rank_correlations([it.ranks for it in split.items], matrix))
    return metrics, stats


__all__ = [
    "CONVENTIONS", "Convention", "ItemData", "item_data", "per_prompt_data", "resamples_for", "conventions", "lookup_convention", "DEFAULT_RESAMPLES", "DEFAULT_SEED", "PerPrompt", "accuracy_for", "anchor_outcomes",
    "brier_score", "cluster_bootstrap", "expected_calibration_error", "paired_bootstrap", "per_prompt",
    "rank_correlations", "reliability_bins", "score_matrix", "tune_tie_threshold",
]
