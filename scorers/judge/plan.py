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


#: parse failures listed in the run summary (the count is complete; the examples are the first few)
EXAMPLES = 10


@dataclass
class JudgeTally:
    """The run-level figures of a judge run, from its judgements' sample-row records (each judgement
    once): how many there were, how many did not parse (and the first few, with their reasons), and
    position bias over the usable pairwise ones: how often the image shown first wins (the verdict
    follows the position), the mean P(shown first wins) of soft judgements, and, for pairs judged in
    both orders, how often the two orders agree on the winner.

    The scorer fills one as it judges (``summary()``), and the runner recounts one from every row of
    the run when it finishes, so that a resumed run, a merged one and one scored on Ray workers report
    all of their judgements, not only this process's."""

    judgements: int = 0
    parse_failures: int = 0
    filled_by_fallback: int = 0
    examples: list[dict] = field(default_factory=list)
    decided: int = 0
    first_wins: int = 0
    soft: list[float] = field(default_factory=list)
    #: (item, the pair sorted) -> {image shown first: [P(the lower index wins), ...]}
    by_pair: dict[tuple[str, tuple[int, ...]], dict[int, list[float]]] = field(default_factory=dict)

    def add(self, item_id: str, record: dict) -> None:
        """One judgement's record (``shown``, ``status``, ``parsed``, ``policy``, ``counted_as``)."""
        self.judgements += 1
        shown = tuple(record.get("shown") or ())
        if record.get("status") != "ok":
            self.parse_failures += 1
            self.filled_by_fallback += record.get("policy") == "fallback"
            if len(self.examples) < EXAMPLES:
                parsed = record.get("parsed")
                self.examples.append({"prompt_id": item_id, "shown": list(shown),
                                      "reason": parsed.get("reason") if isinstance(parsed, dict) else None})
            return
        counted = record.get("counted_as")
        if len(shown) != 2 or not isinstance(counted, dict) or "winner" not in counted:
            return  # a pointwise judgement: no position
        p_first = float(counted["p_first"])
        if "answer_probs" in record:
            self.soft.append(p_first)
        if counted["winner"] in ("first", "second"):
            self.decided += 1
            self.first_wins += counted["winner"] == "first"
        low = min(shown)
        self.by_pair.setdefault((item_id, tuple(sorted(shown))), {}).setdefault(shown[0], []).append(
            p_first if shown[0] == low else 1.0 - p_first)

    def counts(self) -> dict:
        return {"n_judgements": self.judgements, "n_parse_failures": self.parse_failures,
                "n_filled_by_fallback": self.filled_by_fallback, "parse_failure_examples": list(self.examples)}

    def position_bias(self) -> dict:
        out: dict = {"n_decided": self.decided}
        if self.decided:
            out["first_shown_win_rate"] = self.first_wins / self.decided
        if self.soft:
            out["mean_p_first_shown"] = float(np.mean(self.soft))
        both = [orders for orders in self.by_pair.values() if len(orders) == 2]
        agree = 0
        for orders in both:
            a, b = (float(np.mean(v)) - 0.5 for v in orders.values())
            agree += (a > 0 and b > 0) or (a < 0 and b < 0) or (a == 0 and b == 0)
        out["n_pairs_both_orders"] = len(both)
        if both:
            out["order_agreement"] = agree / len(both)
        return out
