"""UnifiedReward 1.0 / 2.0, pointwise: 1.0 answers ``Final Score: x`` (1-5); 2.0 answers
``Alignment Score (1-5): X``, ``Coherence Score (1-5): Y``, ``Style Score (1-5): Z`` (floats, e.g.
``2.69``).

Sources: yifan123/flow_grpo ac4c86e8cae021841f1fde853d340e0db67690dd ``flow_grpo/rewards.py``
(the UnifiedReward reward: the first match of ``Final Score:`` followed by a digit 1-5 and an
optional decimal part; no match -> 0.0, silently; the score is then divided by 5, which changes
no comparison, so prefbench keeps the 1-5 scale) and CodeGoat24/UnifiedReward
ff6f520247a2d36e2aff7b2ba53a935afd437f66 ``inference_qwen/UnifiedReward-2.0-inference/
point_score_ACS_image_generation.py`` (the 2.0 format). The pinned template is flow_grpo's 1.0
question; pass ``template=FILE`` for a 2.0 prompt.

A 2.0 answer scores the **mean** of its three aspect scores: prefbench's choice, since no official
code found here turns the three into one number. The official policy is flow_grpo's
(``fallback``: 0.0, below every real score, and counted here).
"""

from __future__ import annotations

import re

from prefbench.judges.base import AnswerPosition, JudgeProtocol, Parsed, PromptLayout, TemplateSource, failed

_FINAL = re.compile(r"Final Score:\s*([1-5](?:\.\d+)?)")
_ASPECTS = {
    "alignment": re.compile(r"Alignment Score\s*\(1-5\)\s*:\s*\**\s*(\d+(?:\.\d+)?)"),
    "coherence": re.compile(r"Coherence Score\s*\(1-5\)\s*:\s*\**\s*(\d+(?:\.\d+)?)"),
    "style": re.compile(r"Style Score\s*\(1-5\)\s*:\s*\**\s*(\d+(?:\.\d+)?)"),
}
FALLBACK = 0.0


def parse(text: str) -> Parsed:
    if not (text or "").strip():
        return failed("empty text")
    final = _FINAL.search(text)
    if final:
        return Parsed(True, score=float(final.group(1)), aspects={"final": float(final.group(1))})
    aspects = {}
    for key, pattern in _ASPECTS.items():
        m = pattern.search(text)
        aspects[key] = float(m.group(1)) if m else None
    read = [v for v in aspects.values() if v is not None]
    if not read:
        return failed("no 'Final Score:' and no 2.0 aspect scores")
    if len(read) < len(aspects):
        gone = ", ".join(k for k, v in aspects.items() if v is None)
        return failed(f"2.0 answer without {gone}", aspects=aspects)
    return Parsed(True, score=sum(read) / len(read), aspects=aspects)


def fallback(parsed: Parsed) -> Parsed:
    """flow_grpo's repair: no score read -> 0.0."""
    return Parsed(False, score=FALLBACK, aspects=parsed.aspects, reason=parsed.reason, filled=1)


PROTOCOL = JudgeProtocol(
    name="unifiedreward",
    kind="pointwise",
    description="UnifiedReward 1.0 'Final Score: x' / 2.0 Alignment, Coherence, Style (mean); unparsed = 0.0",
    parse=parse,
    official_policy="fallback",
    fallback=fallback,
    neutral_score=3.0,
    policy_source="yifan123/flow_grpo@ac4c86e8 flow_grpo/rewards.py (no 'Final Score' match -> 0.0)",
    template=TemplateSource(
        "github:yifan123/flow_grpo", "ac4c86e8cae021841f1fde853d340e0db67690dd", "flow_grpo/rewards.py",
        "18f284f454424e6bc22352e8ac4b51df4246b0169d35ab2f94140621e1608832",
        literal="<image>\nYou are given a text caption", fields=("{prompt}", "<image>"),
        note="the UnifiedReward 1.0 question of flow_grpo's reward function"),
    answer=AnswerPosition("Final Score: ", ("1", "2", "3", "4", "5"), (1.0, 2.0, 3.0, 4.0, 5.0),
                          note="expected rating over '1'..'5' after 'Final Score: ' (1.0 format only)"),
    layout=PromptLayout("{prompt}", ("<image>",)),
    parser_source="yifan123/flow_grpo@ac4c86e8 flow_grpo/rewards.py (_extract_scores)",
    notes=("flow_grpo's pattern reads 'Final Score: 10' as 1 (one digit 1-5); prefbench keeps its pattern",
           "2.0 answers score the mean of the three aspects (prefbench's choice)"),
)
