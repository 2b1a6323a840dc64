"""GenAI-Bench's judge prompt: pairwise, 4-way; the verdict is ``[[A>B]]``, ``[[B>A]]``,
``[[A=B=Good]]`` or ``[[A=B=Bad]]`` (``[[A>>B]]``, ``[[B>>A]]`` and ``[[A=B]]`` also accepted).

Source (read at TIGER-AI-Lab/GenAI-Bench f0b0334d414074c6b1c97e2c60ad8d8a592bda9f): ``inference.py``
``parse_response`` takes the first match of the greedy pattern ``[[ ... ]]`` on one line, so
``[[A>B]] or [[B>A]]`` on one line is one unrecognised span; no match is counted wrong. The
template is ``genaibench/templates/image_generation/pairwise.txt`` (placeholders ``<prompt>``,
``<left_image>``, ``<right_image>``; model A = the left image).
"""

from __future__ import annotations

import re

from prefbench.judges.base import JudgeProtocol, Parsed, PromptLayout, TemplateSource, failed

_SPAN = re.compile(r"\[\[.*\]\]")
_VERDICTS = {"[[A>B]]": "first", "[[A>>B]]": "first", "[[B>A]]": "second", "[[B>>A]]": "second",
             "[[A=B=Good]]": "both_good", "[[A=B=Bad]]": "both_bad", "[[A=B]]": "tie"}
#: winner (in the order shown) -> the bracketed verdict GenAI-Bench's rule reads
BRACKETS = {"first": "[[A>B]]", "second": "[[B>A]]", "tie": "[[A=B]]", "both_good": "[[A=B=Good]]",
            "both_bad": "[[A=B=Bad]]"}


def parse(text: str) -> Parsed:
    if not (text or "").strip():
        return failed("empty text")
    found = _SPAN.search(text)
    if found is None:
        return failed("no [[...]] verdict")
    winner = _VERDICTS.get(found.group())
    if winner is None:
        return failed(f"unrecognised verdict {found.group()[:60]!r}")
    return Parsed(True, winner=winner)


PROTOCOL = JudgeProtocol(
    name="genai_bench",
    kind="pairwise",
    description="GenAI-Bench's judge prompt: [[A>B]] / [[B>A]] / [[A=B=Good]] / [[A=B=Bad]]; unparsed = wrong",
    parse=parse,
    official_policy="wrong",
    policy_source="TIGER-AI-Lab/GenAI-Bench@f0b0334d inference.py parse_response (no [[...]] -> incorrect)",
    template=TemplateSource(
        "github:TIGER-AI-Lab/GenAI-Bench", "f0b0334d414074c6b1c97e2c60ad8d8a592bda9f",
        "genaibench/templates/image_generation/pairwise.txt",
        "cde56b9546e5fa3cc98d19b36be6922c89ccb49b56edf0b65f098e6774ce1222",
        fields=("<prompt>", "<left_image>", "<right_image>")),
    answer=None,
    layout=PromptLayout("<prompt>", ("<left_image>", "<right_image>")),
    parser_source="TIGER-AI-Lab/GenAI-Bench@f0b0334d inference.py parse_response",
    notes=("no soft read-out: the four verdicts share their first tokens ('[[', 'A'), so no single answer "
           "position separates them",),
)
