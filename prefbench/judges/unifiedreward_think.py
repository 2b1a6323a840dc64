"""UnifiedReward-Think: pairwise; reasoning in ``<think>``, then ``<answer>Image 1 is better</answer>``
or ``Image 2 is better``.

Sources (read at CodeGoat24/UnifiedReward ff6f520247a2d36e2aff7b2ba53a935afd437f66):
``UnifiedReward-Think/benchmark_evaluation/GenAI-Bench-Image/test_qwen25_cot_genAI_bench_image.py``
builds the prompt (the template pinned below) and scores a judgement by a substring test of the
expected sentence against the **whole** output. prefbench reads the verdict from the ``<answer>``
block only: a ``<think>`` that says "Image 1 is better" before an answer that says Image 2 would
satisfy the official substring test for either label, which no harness should count twice.
An answer naming both images, or neither, is a parse failure.

The policy is Pref-GRPO's (read at CodeGoat24/Pref-GRPO 3e787f6dd5a3051b40d61f07e9578468ac26130a,
``fastvideo/rewards/unifiedreward_think.py``, ``_pairwise_win_rate``): the first closed
``<answer>...</answer>`` anywhere in the text; "Image 1 is better" in it wins for image 1, else
"Image 2 is better" for image 2, else (or with no answer block) 0.5 to each side: ``neutral``.
Pref-GRPO differs from prefbench in three corners: its first answer block may sit inside
``<think>``, an answer naming both images goes to image 1 (its test comes first), and an unclosed
block is no answer.
"""

from __future__ import annotations

import re

from prefbench.judges.base import AnswerPosition, JudgeProtocol, Parsed, PromptLayout, TemplateSource, failed

_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.S)
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.S)
_SAYS = {"first": "Image 1 is better", "second": "Image 2 is better"}


def answer_block(text: str) -> str | None:
    """The last ``<answer>`` block outside ``<think>`` (an unclosed one runs to the end), or None."""
    outside = _THINK.sub(" ", text or "")
    blocks = _ANSWER.findall(outside)
    return blocks[-1] if blocks else None


def parse(text: str) -> Parsed:
    """``first`` / ``second`` from the answer block; both or neither named, or no block: a failure."""
    if not (text or "").strip():
        return failed("empty text")
    block = answer_block(text)
    if block is None:
        return failed("no <answer> block")
    said = [w for w, sentence in _SAYS.items() if sentence.lower() in " ".join(block.split()).lower()]
    if len(said) != 1:
        return failed("the answer names both images" if said else "the answer names neither image")
    return Parsed(True, winner=said[0])


PROTOCOL = JudgeProtocol(
    name="unifiedreward_think",
    kind="pairwise",
    description="UnifiedReward-Think: <answer>Image 1|2 is better</answer> after <think>; unparsed = 0.5 each side",
    parse=parse,
    official_policy="neutral",
    policy_source="CodeGoat24/Pref-GRPO@3e787f6d fastvideo/rewards/unifiedreward_think.py _pairwise_win_rate "
                  "(no verdict in <answer> -> 0.5 to each side)",
    template=TemplateSource(
        "github:CodeGoat24/UnifiedReward", "ff6f520247a2d36e2aff7b2ba53a935afd437f66",
        "UnifiedReward-Think/benchmark_evaluation/GenAI-Bench-Image/test_qwen25_cot_genAI_bench_image.py",
        "1112809181a13771b1962259cc09021cbd9b955e517c1207a2db519b334dc22f",
        literal="Given a caption and two images", fields=("{prompt}",),
        note="the f-string of the GenAI-Bench evaluation script; the two images precede the text"),
    answer=AnswerPosition("<answer>Image ", ("1", "2"), (1.0, 0.0),
                          note="P('1') vs P('2') after 'Image ' in <answer>: P(the image shown first wins)"),
    layout=PromptLayout("{prompt}"),  # the two images, then the text
    parser_source="CodeGoat24/UnifiedReward@ff6f5202 UnifiedReward-Think/benchmark_evaluation/GenAI-Bench-Image/"
                  "test_qwen25_cot_genAI_bench_image.py (substring test)",
    notes=("the official test looks for the sentence anywhere in the output, <think> included; prefbench reads "
           "<answer> only and calls an answer naming both images a parse failure",
           "Pref-GRPO reads the first closed <answer> block (even inside <think>) and gives an answer naming both "
           "images to image 1"),
)
