"""What the ``judge`` scorer asks a judge, and how the judgements become per-image scores.

No model here: comparisons are planned from an item's images and the mode, and judgements (parsed,
policy applied: :class:`prefbench.judges.judgements.Judgement`) are turned into one result per
image. The rules are those of ``prefbench evaluate --judge-outputs`` (:mod:`prefbench.judges.outputs`),
so a run's judgements and the same texts in a file count the same:

- a pairwise image scores its mean outcome over its judgements (win 1, tie 0.5, loss 0; a soft
  judgement: P(it wins)); in ``anchor`` mode the anchor scores 0.5;
- a judgement whose text did not parse is what the policy makes it: ``neutral`` a tie (pointwise:
  the protocol's neutral score), ``fallback`` the protocol's repair; ``exclude`` drops it (an image
  left with no judgement has no score); ``wrong`` leaves both of its images without a score, which
  every convention counts against the scorer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from prefbench.judges.judgements import Judgement

MODES = ("anchor", "round_robin", "pairs")


@dataclass(frozen=True)
class Comparison:
    """One prompt to the judge: the images in the order shown, and which order of its pair it is
    (``forward``: the anchor first in ``anchor`` mode, the lower index first otherwise; ``reverse``:
    the other one; ``single`` for a pointwise judge)."""

    shown: tuple[int, ...]
    order: str


def plan(mode: str, requested: Sequence[int], usable: Sequence[int], anchor: int | None,
         both_orders: bool) -> list[Comparison]:
    """The comparisons that score ``requested`` images, among the decodable ``usable`` ones."""
    usable_set = set(usable)
    wanted = [k for k in requested if k in usable_set]
    if mode == "pointwise":
        return [Comparison((k,), "single") for k in wanted]
    if mode == "anchor":
        pairs = [(anchor, k) for k in wanted if anchor is not None and k != anchor]
    else:
        ask = set(wanted)
        pairs = [(a, b) for a, b in combinations(sorted(usable_set), 2) if a in ask or b in ask]
    out = []
    for a, b in pairs:
        out.append(Comparison((a, b), "forward"))
        if both_orders:
            out.append(Comparison((b, a), "reverse"))
    return out


@dataclass
class Outcome:
    """One image's result before it becomes an ImageResult."""

    score: float | None
    reason: str | None = None
    judgements: list[Judgement] = field(default_factory=list)
    #: P(this image beats the other) per order shown, for a two-image comparison judged both ways
    order_probs: dict[str, float] | None = None


def pairwise_outcomes(judgements: Sequence[Judgement], requested: Sequence[int], anchor: int | None,
                      mode: str) -> dict[int, Outcome]:
    """Per requested image: its score (None with the reason when it has none) and its judgements."""
    kept = [j for j in judgements if j.action != "exclude"]
    wrong = {k for j in kept if j.action == "wrong" for k in j.images}
    out: dict[int, Outcome] = {}
    for k in requested:
        mine = [j for j in judgements if k in j.images]
        own = [j.outcome_of(k) for j in kept if k in j.images and j.usable]
        if k in wrong:
            out[k] = Outcome(None, "a judgement of this image did not parse and counts wrong "
                                   "(on_parse_failure=wrong)", mine)
        elif mode == "anchor" and k == anchor:
            out[k] = Outcome(0.5, None, [])
        elif own:
            out[k] = Outcome(float(np.mean(own)), None, mine, _order_probs(kept, k, anchor, mode))
        elif mine:
            out[k] = Outcome(None, "every judgement of this image was a parse failure, excluded "
                                   "(on_parse_failure=exclude)", mine)
        else:
            out[k] = Outcome(None, "no other decodable image to compare it with", [])
    return out


def _order_probs(kept: Sequence[Judgement], k: int, anchor: int | None, mode: str) -> dict[str, float] | None:
    """P(``k`` beats the other image) per order shown, in the anchor scheme's terms (the "anchor" of
    a ``pairs`` item is its image 0), when both orders have a usable judgement: what MMRB2's
    position-consistent convention reads."""
    other = anchor if mode == "anchor" else (0 if mode == "pairs" and k != 0 else None)
    if other is None:
        return None
    by: dict[str, list[float]] = {}
    for j in kept:
        if j.usable and set(j.images) == {k, other}:
            by.setdefault("candidate_first" if j.images[0] == k else "anchor_first", []).append(j.outcome_of(k))
    return {o: float(np.mean(v)) for o, v in sorted(by.items())} if len(by) == 2 else None


def pointwise_outcomes(judgements: Sequence[Judgement], requested: Sequence[int]) -> dict[int, Outcome]:
    """Per requested image: the mean of its usable judgements' scores (one per rollout)."""
    out: dict[int, Outcome] = {}
    for k in requested:
        mine = [j for j in judgements if j.images == (k,)]
        if not mine:
            continue
        if any(j.action == "wrong" for j in mine):
            out[k] = Outcome(None, "the judge's text did not parse and counts wrong (on_parse_failure=wrong)", mine)
            continue
        scores = [float(j.score) for j in mine if j.usable]
        if not scores:
            out[k] = Outcome(None, "the judge's text did not parse, excluded (on_parse_failure=exclude)", mine)
        else:
            out[k] = Outcome(float(np.mean(scores)), None, mine)
    return out
