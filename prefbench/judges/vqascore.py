"""VQAScore (t2v_metrics): pointwise; the VLM is asked whether the image shows the prompt and the
score is P("Yes") at the first answer token.

Sources (read at linzhiqiu/t2v_metrics 6ecb74f92028f42c7e64546d3a71e98c8c73068f):
``t2v_metrics/models/vqascore_models/qwen2vl_model.py`` (question ``Does this figure show "{}"?
Please answer Yes or No.``, answer ``Yes``: the softmax probability of the answer token at the first
generated position) and ``gpt4v_model.py`` (over an API: P(yes) from the first token's top
logprobs, else 1 - P(no), else 0.0).

VQAScore is a soft read-out and never parses text. For a text-only file prefbench reads the first
word: ``yes`` -> 1, ``no`` -> 0 (a hard read-out the project itself never reports); anything else
is a parse failure, and the official policy is gpt4v_model's 0.0 (``fallback``).
"""

from __future__ import annotations

import re

from prefbench.judges.base import AnswerPosition, JudgeProtocol, Parsed, PromptLayout, TemplateSource, failed

_FIRST_WORD = re.compile(r"[A-Za-z]+")


def parse(text: str) -> Parsed:
    if not (text or "").strip():
        return failed("empty text")
    word = _FIRST_WORD.search(text)
    said = word.group().lower() if word else ""
    if said not in ("yes", "no"):
        return failed(f"the answer starts with {text.strip()[:30]!r}, not yes or no")
    return Parsed(True, score=1.0 if said == "yes" else 0.0)


def fallback(parsed: Parsed) -> Parsed:
    """gpt4v_model's repair: neither yes nor no -> 0.0."""
    return Parsed(False, score=0.0, reason=parsed.reason, filled=1)


PROTOCOL = JudgeProtocol(
    name="vqascore",
    kind="pointwise",
    description="VQAScore: P('Yes') to 'Does this figure show \"{prompt}\"?' (soft); text: yes=1, no=0",
    parse=parse,
    official_policy="fallback",
    fallback=fallback,
    neutral_score=0.5,
    policy_source="linzhiqiu/t2v_metrics@6ecb74f9 t2v_metrics/models/vqascore_models/gpt4v_model.py "
                  "(neither yes nor no in the top logprobs -> 0.0)",
    template=TemplateSource(
        "github:linzhiqiu/t2v_metrics", "6ecb74f92028f42c7e64546d3a71e98c8c73068f",
        "t2v_metrics/models/vqascore_models/qwen2vl_model.py",
        "4863daacd1234003b9ce69180b7eb63d00c1351b0ff7fd0b01d7530d8ce0548f",
        literal="Does this figure show", fields=("{}",),
        note="the default question_template; '{}' is the prompt"),
    answer=AnswerPosition("", ("Yes", "No"), (1.0, 0.0), score="first",
                          note="P('Yes') over the full vocabulary at the first generated token"),
    layout=PromptLayout("{}"),  # the image, then the question
    readout="soft",
    parser_source="linzhiqiu/t2v_metrics@6ecb74f9 t2v_metrics/models/vqascore_models/qwen2vl_model.py",
    notes=("the text read-out (first word yes/no) is prefbench's; VQAScore itself is the soft read-out",),
)
