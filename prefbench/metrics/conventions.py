"""The three official accuracy conventions, each reduced to per-prompt (numerator, denominator).

Accuracy is ``sum(num) / sum(den)`` over prompts, so one function serves the point estimate
and the cluster bootstrap (which resamples prompts). A missing score (NaN: the image failed or
its answer was unparsed) always counts against the scorer: it is never dropped, and never
replaced by a neutral value.

- ``imagereward`` (ImageReward's test script): every within-item pair with different human
  ranks is one trial; correct iff the better-ranked image has the strictly higher score, so a
  model tie is wrong; human ties are skipped; pooled over all pairs. num = correct pairs,
  den = untied pairs.
- ``hpdv2`` (HPSv2's ``inversion_score``): per prompt 1 - inversions / C(n, 2), where an
  inversion is a pair the model orders strictly opposite to the humans; human-tied and
  model-tied pairs are not inversions. Mean over prompts: num = that value, den = 1.
- ``pickapic`` (PickScore's evaluation): scores of the two images -> softmax probabilities;
  the prediction is a tie when ``|p0 - p1| <= tie_threshold``. Credit 1 when the prediction
  equals the label (a predicted tie on a tied label included), 0.5 when only one of label and
  prediction is a tie, 0 otherwise; mean over rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONVENTIONS = ("imagereward", "hpdv2", "pickapic")


@dataclass
class PerPrompt:
    """Per-prompt sufficient statistics; prompts with den == 0 (all human-tied) are dropped."""

    convention: str
    item_ids: list[str]
    num: np.ndarray
    den: np.ndarray
    n_pairs: int

    @property
    def accuracy(self) -> float:
        total = self.den.sum()
        return float(self.num.sum() / total) if total else float("nan")

    def to_json(self) -> dict:
        return {"item_ids": self.item_ids, "num": self.num.tolist(), "den": self.den.tolist()}

    @classmethod
    def from_json(cls, convention: str, data: dict, n_pairs: int) -> PerPrompt:
        return cls(convention, list(data["item_ids"]), np.asarray(data["num"], float),
                   np.asarray(data["den"], float), n_pairs)


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


def imagereward_item(ranks: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    i, j = _pairs(len(ranks))
    untied = ranks[i] != ranks[j]
    i, j = i[untied], j[untied]
    better = np.where(ranks[i] < ranks[j], i, j)
    worse = np.where(ranks[i] < ranks[j], j, i)
    correct = scores[better] > scores[worse]  # NaN compares False: counted wrong
    return float(correct.sum()), float(len(i))


def hpdv2_item(ranks: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    n = len(ranks)
    if n < 2:
        return 1.0, 1.0
    i, j = _pairs(n)
    dr = ranks[i] - ranks[j]
    ds = scores[i] - scores[j]
    inversions = ((dr < 0) & (ds < 0)) | ((dr > 0) & (ds > 0))
    # a missing score breaks any pair the humans did not tie
    inversions |= np.isnan(ds) & (dr != 0)
    return 1.0 - inversions.sum() / (n * (n - 1) / 2), 1.0


def pickapic_item(label_0: float, scores: np.ndarray, tie_threshold: float) -> tuple[float, float]:
    if np.isnan(scores).any():
        return 0.0, 1.0
    z = scores - scores.max()
    p = np.exp(z) / np.exp(z).sum()
    if abs(p[0] - p[1]) <= tie_threshold:
        pred = 0.5
    else:
        pred = 1.0 if p[0] > p[1] else 0.0
    if pred == label_0:
        return 1.0, 1.0
    if pred == 0.5 or label_0 == 0.5:
        return 0.5, 1.0
    return 0.0, 1.0


def per_prompt(
    convention: str,
    item_ids: Sequence[str],
    ranks: Sequence[Sequence[float]],
    scores: Sequence[Sequence[float]],
    label_0: Sequence[float | None] | None = None,
    tie_threshold: float = 0.0,
) -> PerPrompt:
    """Per-prompt (num, den) for ``convention``; ``scores`` use NaN for a missing score."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    ids, nums, dens, n_pairs = [], [], [], 0
    for k, (item_id, r, s) in enumerate(zip(item_ids, ranks, scores, strict=True)):
        r = np.asarray(r, float)
        s = np.asarray(s, float)
        if convention == "imagereward":
            num, den = imagereward_item(r, s)
            pairs = int(den)
        elif convention == "hpdv2":
            num, den = hpdv2_item(r, s)
            pairs = len(r) * (len(r) - 1) // 2
        else:
            if len(r) != 2:
                raise ValueError(f"pickapic items have 2 images; item {item_id} has {len(r)}")
            lab = label_0[k] if label_0 is not None and label_0[k] is not None else _label_from_ranks(r)
            num, den = pickapic_item(lab, s, tie_threshold)
            pairs = 1
        if den == 0:
            continue
        ids.append(str(item_id))
        nums.append(num)
        dens.append(den)
        n_pairs += pairs
    return PerPrompt(convention, ids, np.asarray(nums, float), np.asarray(dens, float), n_pairs)


def _label_from_ranks(r: np.ndarray) -> float:
    return 0.5 if r[0] == r[1] else (1.0 if r[0] < r[1] else 0.0)


def tune_tie_threshold(
    item_ids, ranks, scores, label_0=None, grid: Sequence[float] | None = None
) -> tuple[float, float]:
    """The tie threshold that maximises pickapic accuracy (tune it on ``validation_unique``).

    Returns ``(threshold, accuracy)``; the smallest threshold wins among equals.
    """
    grid = np.round(np.linspace(0.0, 1.0, 101), 4) if grid is None else grid
    best = (0.0, -1.0)
    for t in grid:
        acc = per_prompt("pickapic", item_ids, ranks, scores, label_0, float(t)).accuracy
        if acc > best[1]:
            best = (float(t), acc)
    return best
