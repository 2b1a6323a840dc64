"""RationalRewards (T2I): pairwise; Markdown ``# Detailed Judgement``, then per aspect
``N. <Aspect>:`` with ``## Score A: [float]``, ``## Score B: [float]``, ``## Winner: ...``; the
prediction is the sum of the aspect scores of each side (the Winner lines are not read).

Sources (read at TIGER-AI-Lab/RationalRewards 44e27ab68d537bee8a6831efe000701664853435):
``reward_model_evaluation/modular_rm_eval/scoring.py`` (``extract_numeric_score``: the first number in
the value; ``N/A`` or no number -> ``--fallback-score``, 2.5; ``compute_pred_total``: the sum of text
faithfulness, physical quality and text rendering; ``get_ranking``: equal sums are ``A=B``, which is
wrong against an A or B label), ``parsing.py`` (``parse_pairwise_response``: the text before
``# Summary:``, after ``Detailed Judgement``, cut into numbered aspect sections) and ``prompts.py``
(``GEN_PROMPT_TEMPLATE``, pinned below).

An ``N/A`` aspect is an answer (the prompt allows it for text rendering) and scores 2.5 on both
sides under every policy, as the official code does. An aspect whose score cannot be read is a
parse failure; the official policy fills it with 2.5 (``fallback``) and counts it.

Where prefbench differs: ``parsing.py`` looks for the second section under the heading
``2. Physical Quality`` while ``GEN_PROMPT_TEMPLATE`` asks for ``2. Physical and Visual Quality``; with
that heading the official parser finds no second section (both sides fall back to 2.5) and its
first section runs to the end of the judgement (the last ``Score A`` line in it, text rendering's,
wins). prefbench reads each aspect under either heading (the README's ``parse_t2i_scores`` uses
``Physical and Visual Quality``).
"""

from __future__ import annotations

import re

from prefbench.judges.base import JudgeProtocol, Parsed, PromptLayout, TemplateSource, failed

FALLBACK = 2.5
#: (aspect key, the headings that open its section)
ASPECTS = (
    ("text_faithfulness", ("text faithfulness",)),
    ("physical_quality", ("physical and visual quality", "physical quality")),
    ("text_rendering", ("text rendering",)),
)
_HEADING = re.compile(r"^[\s#*]*(\d+)\.\s*\**\s*([A-Za-z][A-Za-z /&-]*?)\s*\**\s*:?\s*\**\s*$")
_NUMBER = re.compile(r"(\d+(?:\.\d+)?)")


def _value(line: str):
    """A score line's value: a float, ``"N/A"``, or None (unreadable)."""
    raw = line.split(":", 1)[1] if ":" in line else ""
    cleaned = raw.strip().replace("*", "").replace("~", "").strip()
    if cleaned.strip("[] ").upper() == "N/A":
        return "N/A"
    found = _NUMBER.search(cleaned)
    return float(found.group(1)) if found else None


def sections(text: str) -> dict[str, list[str]]:
    """The lines of each aspect's section of the judgement (text before ``# Summary:``, after
    ``Detailed Judgement``)."""
    body = text.split("# Summary:", 1)[0]
    _, marker, rest = body.partition("Detailed Judgement")
    if not marker:
        return {}
    out: dict[str, list[str]] = {}
    current = None
    for line in rest.splitlines():
        heading = _HEADING.match(line)
        if heading:
            title = heading.group(2).strip().lower()
            key = next((key for key, titles in ASPECTS if title in titles), None)
            if key is not None:  # a numbered line of a justification does not open a section
                current = key
                out.setdefault(current, [])
                continue
        if current is not None:
            out[current].append(line)
    return out


def _read(lines: list[str]) -> dict:
    values: dict = {"a": None, "b": None}
    for line in lines:
        for side in ("a", "b"):
            if values[side] is None and re.search(rf"Score {side.upper()}\b", line):
                values[side] = _value(line)
    return values


def _totals(aspects: dict) -> tuple[float, float]:
    def num(v):
        return v if isinstance(v, float) else FALLBACK

    return (sum(num(a["a"]) for a in aspects.values()), sum(num(a["b"]) for a in aspects.values()))


def _decided(aspects: dict, filled: int = 0, ok: bool = True, reason: str = "") -> Parsed:
    a, b = _totals(aspects)
    winner = "first" if a > b else ("second" if b > a else "tie")
    return Parsed(ok, winner=winner, sides=(a, b), aspects=aspects, filled=filled, reason=reason)


def parse(text: str) -> Parsed:
    if not (text or "").strip():
        return failed("empty text")
    found = sections(text)
    aspects = {key: _read(found.get(key, [])) for key, _ in ASPECTS}
    missing = [f"{key} {side.upper()}" for key, v in aspects.items() for side in ("a", "b") if v[side] is None]
    if missing:
        reason = ("no 'Detailed Judgement' section" if not found
                  else f"unreadable score(s): {', '.join(missing)}")
        return failed(reason, aspects=aspects)
    return _decided(aspects)


def fallback(parsed: Parsed) -> Parsed:
    """The official repair: every unreadable aspect score is 2.5 (a text with nothing readable is a tie)."""
    aspects = {key: dict(parsed.aspects.get(key) or {"a": None, "b": None}) for key, _ in ASPECTS}
    filled = sum(v[side] is None for v in aspects.values() for side in ("a", "b"))
    return _decided(aspects, filled=filled, ok=False, reason=parsed.reason)


PROTOCOL = JudgeProtocol(
    name="rationalrewards",
    kind="pairwise",
    description="RationalRewards (T2I): per-aspect Score A / Score B, prediction = sums; unreadable or N/A = 2.5, "
                "ties wrong",
    parse=parse,
    official_policy="fallback",
    fallback=fallback,
    policy_source="TIGER-AI-Lab/RationalRewards@44e27ab6 reward_model_evaluation/modular_rm_eval/scoring.py "
                  "(extract_numeric_score, --fallback-score 2.5)",
    template=TemplateSource(
        "github:TIGER-AI-Lab/RationalRewards", "44e27ab68d537bee8a6831efe000701664853435",
        "reward_model_evaluation/modular_rm_eval/prompts.py",
        "c58071c48c318189d231a7e21ad4ece91290ffe51bc6849e5a4cd13e41798553",
        literal="You are an expert image evaluator.", fields=("{request}", "<image>"),
        note="GEN_PROMPT_TEMPLATE; each <image> is where an image goes (A, then B)"),
    answer=None,
    layout=PromptLayout("{request}", ("<image>",)),
    parser_source="TIGER-AI-Lab/RationalRewards@44e27ab6 reward_model_evaluation/modular_rm_eval/parsing.py and "
                  "scoring.py",
    notes=("no soft read-out: the verdict is a sum of free-form float scores",
           "the official parsing.py looks for '2. Physical Quality', which the official prompt's "
           "'2. Physical and Visual Quality' heading does not contain; prefbench reads either heading"),
)
