"""Pair conventions of the 2025-26 sets: HPDv3, GenAI-Bench (tau, diff, ties-wrong, the judge's
4-way rule), MMRB2's position-consistent protocol, and HPSv2's per-prompt ImageReward variant.

For a pair, ``h`` is the human label (+1 image 0 better, -1 image 1 better, 0 a tie, GenAI-Bench's
both-bad included, as the reward-model papers count it) and ``m = s0 - s1``. A missing score (NaN)
always counts against the scorer: never concordant, never a model tie. Sources:
- ``tau``, ``diff``: KwaiVGI/VideoAlign ``calc_accuracy.py`` (``calc_accuracy_with_ties``,
  ``calc_accuracy_without_ties``), after Deutsch et al. 2023 (arXiv 2305.14324);
- ``acc_with_ties_wrong``: CodeGoat24/UnifiedReward
  ``benchmark_evaluation/Qwen_evaluation/test_qwen_genAI_bench_image.py`` ("Acc.");
- ``genai_judge``: TIGER-AI-Lab/GenAI-Bench ``inference.py`` (``parse_response``);
- ``mmrb2``: facebookresearch/MMRB2 ``evaluate/compute_scores/compute_accuracy.py``;
- ``imagereward_per_prompt``: tgxs002/HPSv2 ``evaluate_IR`` with ``calc_ImageReward``.
"""

from __future__ import annotations

import re

import numpy as np

from prefbench.metrics.conventions import Convention, ItemData, imagereward_item


def human_label(ranks: np.ndarray) -> int:
    return 0 if ranks[0] == ranks[1] else (1 if ranks[0] < ranks[1] else -1)


def margin(scores: np.ndarray) -> float:
    return float(scores[0] - scores[1])


# --- HPDv3 -----------------------------------------------------------------------------------

def _pair_accuracy(d: ItemData):
    h = human_label(d.ranks)
    if h == 0:
        return 0.0, 0.0, 0
    return float(h * margin(d.scores) > 0), 1.0, 1  # NaN > 0 is False: wrong


# --- GenAI-Bench, reward-model rules ------------------------------------------------------------

def tau_sweep(h: np.ndarray, m: np.ndarray) -> tuple[float, float]:
    """Tie-calibrated accuracy with ties and its threshold: ``(tau*, eps*)``.

    The reward-model papers' sweep: pairs sorted by |m| (stably), and after each pair joins the
    model-tied set, tau = (C + T_hm) / N; the best state wins (the first among equals). The
    states are exactly "the first k pairs in that order are model ties", k = 1..N, which is what
    the incremental loop of the reference code visits, duplicates of |m| included. A NaN margin
    is never tied and never concordant.
    """
    n = len(h)
    if n == 0:
        return float("nan"), float("nan")
    finite = ~np.isnan(m)
    absm = np.where(finite, np.abs(m), np.inf)
    order = np.argsort(absm, kind="stable")[: int(finite.sum())]
    if len(order) == 0:
        return float("nan"), float("nan")
    concordant = (h != 0) & (h * np.where(finite, m, 0.0) > 0)
    c_total = concordant.sum()
    c_gone = np.cumsum(concordant[order])            # concordant pairs turned into model ties
    thm = np.cumsum(h[order] == 0)                   # human ties now also model ties
    tau = (c_total - c_gone + thm) / n
    best = int(np.argmax(tau))
    return float(tau[best]), float(absm[order[best]])


def _hm_rows(d: ItemData) -> dict:
    return {"h": [human_label(d.ranks)], "m": [margin(d.scores)]}


def _tau(rows: dict, options: dict) -> float:
    return tau_sweep(rows["h"], rows["m"])[0]


def _tau_summary(datas: list[ItemData]) -> dict:
    h = np.asarray([human_label(d.ranks) for d in datas], float)
    m = np.asarray([margin(d.scores) for d in datas], float)
    tau, eps = tau_sweep(h, m)
    return {"tie_epsilon": eps}


def _diff(d: ItemData):
    h = human_label(d.ranks)
    if h == 0:
        return 0.0, 0.0, 0
    return float(h * margin(d.scores) > 0), 1.0, 1


def _ties_wrong(d: ItemData):
    h = human_label(d.ranks)
    return (float(h * margin(d.scores) > 0) if h else 0.0), 1.0, 1


# --- GenAI-Bench, the judge's 4-way rule ------------------------------------------------------

VOTES = ("leftvote", "rightvote", "tievote", "bothbad_vote")
_ACCEPT = {
    "leftvote": ("[[A>>B]]", "[[A>B]]"),
    "rightvote": ("[[B>>A]]", "[[B>A]]"),
    "tievote": ("[[A=B]]", "[[A=B=Good]]"),
    "bothbad_vote": ("[[A=B]]", "[[A=B=Bad]]"),
}
_VERDICT = re.compile(r"\[\[.*\]\]")


def judge_verdict(d: ItemData) -> str | None:
    """The bracketed verdict of the item: parsed from the judge's answer text when the scores file
    gave verdicts (the first ``[[...]]`` span, greedy, as GenAI-Bench parses it; None = unparsed), else
    derived from the two scores (``[[A>B]]``, ``[[B>A]]``, or ``[[A=B]]`` on a model tie)."""
    if d.verdicts is not None:
        text = d.verdicts.get("verdict")
        found = _VERDICT.search(text) if isinstance(text, str) else None
        return found.group() if found else None
    m = margin(d.scores)
    if np.isnan(m):
        return None
    return "[[A>B]]" if m > 0 else ("[[B>A]]" if m < 0 else "[[A=B]]")


def _judge(d: ItemData):
    verdict = judge_verdict(d)
    return float(verdict is not None and verdict in _ACCEPT[d.label]), 1.0, 1


def _judge_summary(datas: list[ItemData]) -> dict:
    unparsed = sum(judge_verdict(d) is None for d in datas)
    return {"n_unparsed_verdicts": unparsed, "unparsed_rule": "counted wrong (GenAI-Bench inference.py)"}


# --- MMRB2 -----------------------------------------------------------------------------------

def mmrb2_judgements(d: ItemData) -> list[str | None]:
    """[forward, reverse] judgements of a pair, in the pair's own A/B terms (reverse flipped).

    From a verdict file: ``forward`` / ``reverse`` answers (``A``, ``B`` or anything else); an
    empty or absent one is None (not counted, as MMRB2 skips it). From scores: the scorer ranks
    the two images; one that sees them one at a time judges both orders alike, so both
    judgements are the score order (``tie`` on equal scores, which is counted and wrong). A
    pairwise scorer that showed both orders (``-S both_orders=true``) gives two judgements of its
    own: forward = the order with A (image 0) shown first, reverse = B first."""
    if d.verdicts is not None:
        fwd = d.verdicts.get("forward") or None
        rev = d.verdicts.get("reverse") or None
        flip = {"A": "B", "B": "A"}
        return [fwd, flip.get(rev, rev) if rev is not None else None]
    ordered = _order_judgements(d)
    if ordered is not None:
        return ordered
    m = margin(d.scores)
    if np.isnan(m):
        return ["missing", "missing"]  # counted, and wrong
    j = "A" if m > 0 else ("B" if m < 0 else "tie")
    return [j, j]


def _order_judgements(d: ItemData) -> list[str] | None:
    """[forward, reverse] from a pairwise scorer's per-order probabilities, or None without them.

    The image that carries them is the candidate c, the other the anchor; a probability of c
    beating the anchor above 1/2 picks c, below picks the anchor, exactly 1/2 is a ``tie``."""
    if d.order_probs is None or np.isnan(d.scores).any():
        return None
    carried = [k for k, p in enumerate(d.order_probs) if p]
    if len(carried) != 1 or set(d.order_probs[carried[0]]) != {"anchor_first", "candidate_first"}:
        return None
    c = carried[0]
    probs = d.order_probs[c]
    out = []
    for first in (0, 1):  # forward: image 0 (A) shown first; reverse: image 1 (B) first
        p = probs["candidate_first" if first == c else "anchor_first"]
        winner = c if p > 0.5 else (1 - c if p < 0.5 else None)
        out.append("tie" if winner is None else "AB"[winner])
    return out


def _mmrb2(d: ItemData):
    if d.ranks[0] == d.ranks[1]:
        raise ValueError(f"mmrb2 item {d.item_id} has no chosen image")
    chosen = "A" if d.ranks[0] < d.ranks[1] else "B"
    judged = [j for j in mmrb2_judgements(d) if j is not None]
    return float(sum(j == chosen for j in judged)), float(len(judged)), len(judged)


def _mmrb2_summary(datas: list[ItemData]) -> dict:
    missing = uncounted = 0
    for d in datas:
        judged = [j for j in mmrb2_judgements(d) if j is not None]
        uncounted += 2 - len(judged)
        missing += d.verdicts is not None and not d.verdicts  # no row at all for the pair
    return {"n_missing_pairs": missing, "n_uncounted_judgements": uncounted,
            "unparsed_rule": "an empty judgement is not counted; a pair the file never answers is missing "
                             "(MMRB2 compute_accuracy.py)"}


# --- ImageReward, per prompt (HPSv2's evaluate_IR) ------------------------------------------------

def _ir_per_prompt(d: ItemData):
    num, den = imagereward_item(d.ranks, d.scores)
    if den == 0:
        return 0.0, 0.0, 0
    return num / den, 1.0, int(den)


HPDV3 = Convention(
    "hpdv3", "HPDv3 pair accuracy: the preferred image (path1) scored strictly higher; a model tie is wrong",
    per_item=_pair_accuracy, n_images=2)
TAU = Convention(
    "tau", "GenAI-Bench tau: tie-calibrated accuracy with ties (Deutsch et al. 2023), threshold swept "
    "over |s0 - s1|; both-bad counts as a tie", rows=_hm_rows, statistic=_tau, n_images=2,
    summary=_tau_summary)
DIFF = Convention(
    "diff", "GenAI-Bench diff: human ties excluded, model ties wrong", per_item=_diff, n_images=2)
ACC_WITH_TIES_WRONG = Convention(
    "acc_with_ties_wrong", "UnifiedReward's Acc.: human ties stay in the denominator and count wrong",
    per_item=_ties_wrong, n_images=2)
GENAI_JUDGE = Convention(
    "genai_judge", "GenAI-Bench's judge rule: [[A>B]] / [[B>A]] / [[A=B=Good]] / [[A=B=Bad]] against "
    "the 4-way vote, unparsed = wrong", per_item=_judge, n_images=2, needs=("label",),
    summary=_judge_summary, verdict_keys=("verdict",), verdicts_required=True)
MMRB2 = Convention(
    "mmrb2", "MMRB2's position-consistent accuracy: each pair judged forward and reversed, each "
    "judgement counts once", per_item=_mmrb2, n_images=2, summary=_mmrb2_summary,
    verdict_keys=("forward", "reverse"))
IMAGEREWARD_PER_PROMPT = Convention(
    "imagereward_per_prompt", "HPSv2's evaluate_IR: ImageReward's pair rule averaged per prompt",
    per_item=_ir_per_prompt)

#: this module's conventions (each also named in prefbench.metrics.conventions.MANIFEST)
CONVENTIONS = [HPDV3, TAU, DIFF, ACC_WITH_TIES_WRONG, GENAI_JUDGE, MMRB2, IMAGEREWARD_PER_PROMPT]
