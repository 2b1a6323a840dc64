"""The judge protocols' parsers on outputs shaped as each project documents them, the nasty ones included,
and the registry that holds them."""

from __future__ import annotations

import json

import pytest

from prefbench.errors import UsageError
from prefbench.judges import BUILTIN, lookup, protocols
from prefbench.judges.base import CHOICES, JudgeProtocol

THINK = """<think>
1. Semantic consistency: Image 1 (9/10) - the red car is there; Image 2 (6/10) - the car is blue.
2. Aesthetics: Image 2 (8/10) - warm light; Image 1 (8/10) - balanced.
3. Authenticity: Image 1 (8/10) - clean reflections; Image 2 (5/10) - warped wheels.
Total score:
Image 1: 9+8+8=25
Image 2: 6+8+5=19
</think>
<answer>{answer}</answer>"""


def test_the_six_builtins_are_registered_with_their_kinds_and_policies():
    got = {name: (p.kind, p.official_policy) for name, p in protocols(include_plugins=False).items()}
    assert got == {
        "unifiedreward_think": ("pairwise", "neutral"),
        "unifiedreward": ("pointwise", "fallback"),
        "rationalrewards": ("pairwise", "fallback"),
        "mmrb2": ("pairwise", "exclude"),
        "genai_bench": ("pairwise", "wrong"),
        "vqascore": ("pointwise", "fallback"),
    }
    for name, p in protocols(include_plugins=False).items():
        assert p.name == name and p.template.verified, name  # every built-in prompt is pinned and hashed
        assert p.policy("official") == p.official_policy and p.policy("exclude") == "exclude"


def test_unknown_protocol_and_policy_are_clear_errors():
    with pytest.raises(UsageError, match="unknown judge protocol 'mmrb'.*Did you mean: mmrb2"):
        lookup("mmrb")
    with pytest.raises(UsageError, match="on_parse_failure must be one of wrong, exclude, neutral, official"):
        lookup("mmrb2").policy("zero")
    assert set(CHOICES) == {"wrong", "exclude", "neutral", "official"}


def test_a_protocol_that_names_a_fallback_policy_must_give_one():
    with pytest.raises(ValueError, match="needs a fallback function"):
        JudgeProtocol("x", "pairwise", "", lambda t: None, "fallback", "nowhere")
    with pytest.raises(ValueError, match="needs neutral_score"):
        JudgeProtocol("x", "pointwise", "", lambda t: None, "wrong", "nowhere")


# --- UnifiedReward-Think -------------------------------------------------------------------------

def test_think_reads_the_answer_block():
    parse = lookup("unifiedreward_think").parse
    assert parse(THINK.format(answer="Image 1 is better")).winner == "first"
    assert parse(THINK.format(answer="Image 2 is better")).winner == "second"
    assert parse(THINK.format(answer=" image 2  is better. ")).winner == "second"


def test_think_ignores_a_verdict_inside_think_that_the_answer_contradicts():
    text = THINK.replace("Total score:", "So Image 1 is better overall.\nTotal score:").format(answer="Image 2 is better")
    got = lookup("unifiedreward_think").parse(text)
    assert got.ok and got.winner == "second"


def test_think_failures():
    parse = lookup("unifiedreward_think").parse
    both = parse(THINK.format(answer="Image 1 is better. Image 2 is better"))
    assert not both.ok and "both" in both.reason
    assert parse("").reason == "empty text"
    assert parse("<think>Image 1 is better</think>").reason == "no <answer> block"  # verdict only inside think
    assert parse(THINK.format(answer="Both images are equally good")).reason == "the answer names neither image"
    truncated = THINK.format(answer="Image 2 is better").replace("</answer>", "")
    assert parse(truncated).winner == "second"  # an unclosed answer block runs to the end


# --- UnifiedReward 1.0 / 2.0 ---------------------------------------------------------------------

def test_unifiedreward_one_and_two():
    parse = lookup("unifiedreward").parse
    assert parse("The car matches the caption.\nFinal Score: 4").score == 4.0
    assert parse("Final Score: 3.5 (good)").score == 3.5
    two = parse('Word-wise Scores: [["red", 0.1], ["car", 0.2]]\n\nAlignment Score (1-5): 2.69\n'
                "Coherence Score (1-5): 3.4036\nStyle Score (1-5): 4\n")
    assert two.ok and two.score == pytest.approx((2.69 + 3.4036 + 4) / 3)
    assert two.aspects == {"alignment": 2.69, "coherence": 3.4036, "style": 4.0}
    assert parse("Final Score: 10").score == 1.0  # flow_grpo's one-digit pattern, kept


def test_unifiedreward_failures_and_flow_grpo_fallback():
    p = lookup("unifiedreward")
    partial = p.parse("Alignment Score (1-5): 2.69\nStyle Score (1-5): 3")
    assert not partial.ok and "coherence" in partial.reason and partial.aspects["coherence"] is None
    none = p.parse("I cannot rate this image.")
    assert not none.ok and p.fallback(none).score == 0.0 and p.neutral_score == 3.0
    assert not p.parse("Final Score: 0").ok  # outside 1-5: flow_grpo's pattern does not match it


# --- RationalRewards -----------------------------------------------------------------------------

def _rr(tf=("3.5", "2.69"), pq=("3", "3.25"), tr=("N/A", "N/A"), physical="Physical and Visual Quality"):
    def block(n, title, ab, winner="Image A"):
        return (f"{n}. {title}:\n## Justification: 1. The sign reads 'OPEN'. 2. The cat is red.\n"
                f"## Score A: {ab[0]}\n## Score B: {ab[1]}\n## Winner: {winner}\n")
    return ("# User Request Analysis\nA red cat under an OPEN sign.\n# Detailed Judgement\n"
            + block(1, "Text Faithfulness", tf) + block(2, physical, pq) + block(3, "Text Rendering", tr, "N/A")
            + "# Summary: Image A follows the request better; Image B is sharper.\n")


def test_rationalrewards_sums_aspects_with_na_as_two_and_a_half():
    got = lookup("rationalrewards").parse(_rr())
    assert got.ok and got.winner == "first"
    assert got.sides == pytest.approx((3.5 + 3 + 2.5, 2.69 + 3.25 + 2.5))
    assert got.aspects["text_rendering"] == {"a": "N/A", "b": "N/A"}
    # the official parser's heading ('Physical Quality') is read too
    assert lookup("rationalrewards").parse(_rr(physical="Physical Quality")).sides == got.sides
    assert lookup("rationalrewards").parse(_rr(tf=("[3.0]", "**2.0**"))).aspects["text_faithfulness"] == \
        {"a": 3.0, "b": 2.0}


def test_rationalrewards_a_tie_is_a_tie_and_the_winner_lines_are_not_read():
    got = lookup("rationalrewards").parse(_rr(tf=("3", "3"), pq=("2.5", "2.5")))
    assert got.ok and got.winner == "tie"  # every 'Winner: Image A' line notwithstanding


def test_rationalrewards_unreadable_aspect_is_a_failure_the_official_fallback_fills():
    p = lookup("rationalrewards")
    got = p.parse(_rr(pq=("good", "3.25")))
    assert not got.ok and "physical_quality A" in got.reason
    filled = p.fallback(got)
    assert filled.filled == 1 and filled.sides == pytest.approx((3.5 + 2.5 + 2.5, 2.69 + 3.25 + 2.5))
    assert filled.winner == "first"
    cut = _rr().split("2. Physical")[0]  # truncated mid-judgement
    bad = p.parse(cut)
    assert not bad.ok and p.fallback(bad).filled == 4
    nothing = p.parse("I'm sorry, I can't compare these images.")
    assert nothing.reason == "no 'Detailed Judgement' section" and p.fallback(nothing).winner == "tie"
    assert p.parse("").reason == "empty text"


# --- MMRB2 ---------------------------------------------------------------------------------------

MM = {"reasoning": {"faithfulness_to_prompt": "A shows the red car; B a blue one.", "text_rendering": "n/a",
                    "comparison_summary": "A is better"}, "score": 5, "better_response": "A", "confidence": 0.45,
      "confidence_rationale": "clear"}


def test_mmrb2_reads_json_fenced_or_inside_prose():
    parse = lookup("mmrb2").parse
    assert parse(json.dumps(MM)).winner == "first"
    fenced = parse("```json\n" + json.dumps(dict(MM, better_response="B"), indent=2) + "\n```")
    assert fenced.winner == "second" and fenced.aspects == {"score": 5.0, "confidence": 0.45}
    assert parse("Here is my judgement:\n" + json.dumps(MM) + "\nThanks.").winner == "first"


def test_mmrb2_truncated_json():
    parse = lookup("mmrb2").parse
    text = json.dumps(MM)
    after = text[: text.index('"confidence_rationale"') + 10]  # cut after better_response
    assert parse(after).winner == "first"
    before = text[: text.index('"score"')]  # cut inside the reasoning: nothing to read
    got = parse(before)
    assert not got.ok and "truncated" in got.reason


def test_mmrb2_failures():
    parse = lookup("mmrb2").parse
    assert parse(json.dumps({"reasoning": {}, "score": 3})).reason == "the JSON has no better_response"
    assert "neither 'A' nor 'B'" in parse(json.dumps(dict(MM, better_response="tie"))).reason
    assert not parse(json.dumps(dict(MM, better_response="A and B"))).ok  # both "better"
    assert parse("   ").reason == "empty text"


# --- GenAI-Bench ---------------------------------------------------------------------------------

def test_genai_bench_verdicts():
    parse = lookup("genai_bench").parse
    assert parse("Model A renders the dog correctly.\nFinal verdict: [[A>B]]").winner == "first"
    assert parse("[[B>>A]]").winner == "second"
    assert parse("Both fine. [[A=B=Good]]").winner == "both_good"
    assert parse("[[A=B=Bad]]").winner == "both_bad"
    assert parse("[[A=B]]").winner == "tie"


def test_genai_bench_greedy_span_and_failures():
    parse = lookup("genai_bench").parse
    got = parse("I hesitate between [[A>B]] and [[B>A]].")  # one greedy span on one line: unrecognised
    assert not got.ok and "unrecognised" in got.reason
    assert parse("First thought [[A>B]]\nfinal: [[B>A]]").winner == "first"  # the first line's span
    assert parse("Model A is better.").reason == "no [[...]] verdict"
    assert parse("").reason == "empty text"


# --- VQAScore ------------------------------------------------------------------------------------

def test_vqascore_text_read_out():
    p = lookup("vqascore")
    assert p.parse("Yes").score == 1.0 and p.parse("no.").score == 0.0 and p.parse(" YES, it does").score == 1.0
    bad = p.parse("The figure shows a cat.")
    assert not bad.ok and p.fallback(bad).score == 0.0 and p.neutral_score == 0.5
    assert p.answer.candidates == ("Yes", "No") and p.answer.score == "first"


def test_every_builtin_fails_loudly_on_empty_text():
    for name in BUILTIN:
        got = lookup(name).parse("")
        assert not got.ok and got.reason == "empty text", name
