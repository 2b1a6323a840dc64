"""The MMRB2 judge prompt: pairwise; JSON ``{"reasoning": {...}, "score": 1-6, "better_response": "A"|"B",
"confidence": 0-1, ...}``, judged in both orders.

Sources (read at facebookresearch/MMRB2 7ff0552cf298441af5ebbabea634b682ef04afee):
``evaluate/generate_judgements/evaluator_apis/llm_judges/local_pairwise_evaluator.py``
(``parse_llm_json``: strip a Markdown code fence, then ``json_repair.loads``, then
``better_response``; a failure raises, and the judgement is never written) and
``evaluate/compute_scores/compute_accuracy.py`` (an empty or absent judgement is not counted; a
pair with no judgement is reported missing): the official policy is ``exclude``. The prompt is
``get_image_gen_prompt()`` in ``evaluation_prompts.py``.

prefbench does not depend on ``json_repair``: it reads the JSON when it parses, else the JSON object
inside the text, else the ``"better_response": "X"`` field wherever it stands (what a repaired,
truncated object would give when the field was written before the cut).
"""

from __future__ import annotations

import json
import re

from prefbench.judges.base import AnswerPosition, JudgeProtocol, Parsed, PromptLayout, TemplateSource, failed

_FENCE_OPEN = re.compile(r"^```(?:json)?\s*\n?")
_FENCE_CLOSE = re.compile(r"\n?```\s*$")
_FIELD = re.compile(r'"better_response"\s*:\s*"([^"\n]*)"')
_NUMBER = r"(-?\d+(?:\.\d+)?)"


def _load(text: str) -> dict | None:
    for candidate in (text, text[text.find("{"): text.rfind("}") + 1] if "{" in text else ""):
        if not candidate:
            continue
        try:
            obj = json.loads(candidate)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


def parse(text: str) -> Parsed:
    body = _FENCE_CLOSE.sub("", _FENCE_OPEN.sub("", (text or "").strip()).strip())
    if not body:
        return failed("empty text")
    obj = _load(body)
    aspects: dict = {}
    if obj is not None:
        better = obj.get("better_response")
        for key in ("score", "confidence"):
            if isinstance(obj.get(key), (int, float)) and not isinstance(obj.get(key), bool):
                aspects[key] = float(obj[key])
    else:
        found = _FIELD.search(body)
        better = found.group(1) if found else None
        for key in ("score", "confidence"):
            m = re.search(rf'"{key}"\s*:\s*{_NUMBER}', body)
            if m:
                aspects[key] = float(m.group(1))
        if better is None:
            return failed("no JSON object and no better_response field (truncated?)", aspects=aspects)
    if better is None:
        return failed("the JSON has no better_response", aspects=aspects)
    if better not in ("A", "B"):
        return failed(f"better_response is {str(better)[:40]!r}, neither 'A' nor 'B'", aspects=aspects)
    return Parsed(True, winner="first" if better == "A" else "second", aspects=aspects)


PROTOCOL = JudgeProtocol(
    name="mmrb2",
    kind="pairwise",
    description="MMRB2's judge prompt: JSON with better_response A/B, judged in both orders; unparsed = not counted",
    parse=parse,
    official_policy="exclude",
    policy_source="facebookresearch/MMRB2@7ff0552c evaluate/compute_scores/compute_accuracy.py (empty judgement "
                  "not counted, pair missing)",
    template=TemplateSource(
        "github:facebookresearch/MMRB2", "7ff0552cf298441af5ebbabea634b682ef04afee",
        "evaluate/generate_judgements/evaluator_apis/llm_judges/evaluation_prompts.py",
        "f961987a13f193dafec6eae3c14721d2e5c8c3533490ba8ca66372642a4c9efe",
        literal="You are an expert in multimodal quality analysis",
        note="get_image_gen_prompt(); the harness appends the prompt and the two responses after it"),
    answer=AnswerPosition('"better_response": "', ("A", "B"), (1.0, 0.0),
                          note="P('A') vs P('B') inside the better_response string"),
    # MMRB2's harness appends the prompt and the two responses after the judge prompt; this
    # wording is prefbench's (the harness's own is not copied)
    layout=PromptLayout("{prompt}", ("<image>",), suffix="\n\nPrompt: {prompt}\nResponse A: <image>\nResponse B: <image>\n"),
    parser_source="facebookresearch/MMRB2@7ff0552c evaluate/generate_judgements/evaluator_apis/llm_judges/"
                  "local_pairwise_evaluator.py parse_llm_json",
    notes=("a better_response that is present but neither 'A' nor 'B' is a parse failure here; MMRB2's "
           "compute_accuracy counts it as a wrong judgement",
           "json_repair is not used: a truncated object parses only when better_response was written before the cut"),
)
