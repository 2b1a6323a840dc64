"""GenAI-Bench-Rank (linzhiqiu/t2v_metrics ``genai_image_ranking.py``): pick the best of N.

Items hold N images (9 in the published set) with human scores (``Item.human``, the mean
rating). Per prompt, the scorer's pick is its arg-max (the first among equal scores, as
``torch.argmax``); by-3 splits the images into consecutive groups of three and picks one per
group. A prompt with a missing score gets the worst outcome: its pick is wrong for top-1 and is
the lowest human score of the group for best-of-N.

- ``genai_rank_top1``: share of prompts whose pick is among the images tied for the human max;
- ``genai_rank_top1_by3``: the same per group of three, pooled over groups;
- ``genai_rank_best9`` / ``genai_rank_best3``: the human score of the pick (by-3: the mean of
  the three picks), averaged over prompts; the summary adds the random (mean) and oracle (max)
  baselines the reference script prints.
"""

from __future__ import annotations

import numpy as np

from prefbench.metrics.conventions import Convention, ItemData


def _groups(n: int, size: int | None) -> list[slice]:
    if size is None:
        return [slice(0, n)]
    if n % size:
        raise ValueError(f"by-{size} needs a multiple of {size} images per item, got {n}")
    return [slice(k, k + size) for k in range(0, n, size)]


def _pick(scores: np.ndarray, human: np.ndarray) -> tuple[int, bool]:
    """(index, ok): the arg-max, or (index of the lowest human score, False) when a score is missing."""
    if np.isnan(scores).any():
        return int(np.argmin(human)), False
    return int(np.argmax(scores)), True


def _top1(size):
    def fn(d: ItemData):
        hits = 0
        groups = _groups(len(d.scores), size)
        for g in groups:
            s, h = d.scores[g], np.asarray(d.human, float)[g]
            k, ok = _pick(s, h)
            hits += ok and h[k] == h.max()
        return float(hits), float(len(groups)), len(groups)
    return fn


def _best(size):
    def fn(d: ItemData):
        picks = []
        for g in _groups(len(d.scores), size):
            s, h = d.scores[g], np.asarray(d.human, float)[g]
            picks.append(h[_pick(s, h)[0]])
        return float(np.mean(picks)), 1.0, 1
    return fn


def _baselines(size):
    def fn(datas: list[ItemData]) -> dict:
        rand, oracle = [], []
        for d in datas:
            h = np.asarray(d.human, float)
            rand.append(h.mean())
            oracle.append(np.mean([h[g].max() for g in _groups(len(h), size)]))
        return {"random_baseline": float(np.mean(rand)) if rand else float("nan"),
                "oracle": float(np.mean(oracle)) if oracle else float("nan")}
    return fn


GENAI_RANK_TOP1 = Convention(
    "genai_rank_top1", "GenAI-Bench-Rank top-1: the scorer's best of N is among the human-best images",
    per_item=_top1(None), needs=("human",), min_images=2)
GENAI_RANK_TOP1_BY3 = Convention(
    "genai_rank_top1_by3", "GenAI-Bench-Rank top-1 within each group of 3 images, pooled over groups",
    per_item=_top1(3), needs=("human",), min_images=3)
GENAI_RANK_BEST9 = Convention(
    "genai_rank_best9", "GenAI-Bench-Rank best-of-N: mean human score of the scorer's pick",
    per_item=_best(None), needs=("human",), measure="human score", summary=_baselines(None), min_images=2)
GENAI_RANK_BEST3 = Convention(
    "genai_rank_best3", "GenAI-Bench-Rank best-of-3: mean human score of the scorer's pick per group of 3",
    per_item=_best(3), needs=("human",), measure="human score", summary=_baselines(3), min_images=3)

#: this module's conventions (each also named in prefbench.metrics.conventions.MANIFEST)
CONVENTIONS = [GENAI_RANK_TOP1, GENAI_RANK_TOP1_BY3, GENAI_RANK_BEST9, GENAI_RANK_BEST3]
