"""The vllm engine's handling of the answer format, without vLLM: ``vllm.LLM`` is replaced by a
recorder that answers like it (text, token ids, first-position log-probabilities), so these check
which requests the engine makes (stop strings, forced texts, prefill) and how it reads them. The real
engine is tested against vLLM in test_vllm_engine.py where vLLM is installed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from prefbench.engines.base import FORCE_OPEN, AnswerFormat, GenerationSpec, Job
from prefbench.engines.vllm import VLLMEngine

IDS = {"1": 11, "2": 12, "Yes": 21, "No": 22}


class FakeLLM:
    def __init__(self, reasoning="thinking about it"):
        self.reasoning = reasoning
        self.calls: list[tuple[str, dict]] = []

    def generate(self, prompts, params, use_tqdm=False):
        out = []
        for prompt, p in zip(prompts, params):
            self.calls.append((prompt["prompt"], p))
            if "logprob_token_ids" in p:  # the answer request
                lps = {t: SimpleNamespace(logprob=-0.5 - 0.25 * n) for n, t in enumerate(p["logprob_token_ids"])}
                comp = SimpleNamespace(text="1", token_ids=[p["logprob_token_ids"][0]], logprobs=[lps])
            else:  # reasoning, or a free text
                comp = SimpleNamespace(text=self.reasoning, token_ids=[5, 6, 7], logprobs=None, finish_reason="stop")
            out.append(SimpleNamespace(outputs=[comp], prompt_token_ids=[0] * 10, num_cached_tokens=0))
        return out


@pytest.fixture
def engine():
    eng = VLLMEngine(model="fake")
    eng.llm, eng.on_gpu, eng.exact_candidates, eng.end_ids = FakeLLM(), True, True, [99]
    eng.candidate_ids = {}
    eng.single_token_id = lambda text, context=None: IDS[text]
    eng._prompt = lambda job, text: {"prompt": text}  # the assistant text only: what the engine appends
    eng._params = lambda **kw: kw
    return eng


JOB = Job([{"role": "user", "content": [{"type": "text", "text": "compare"}]}], [], "k")


def test_a_judge_prefix_is_the_stop_string_and_is_forced_after_the_budget(engine):
    fmt = AnswerFormat.after("<answer>Image ")
    [[row]] = engine.generate([JOB], GenerationSpec(("1", "2"), budget=4, temperature=0.0, answer=fmt))
    (first, reasoning), (second, answer) = engine.llm.calls
    assert first == "" and reasoning["stop"] == ["<answer>Image "] and reasoning["max_tokens"] == 4
    assert reasoning["logit_bias"] == {99: -100.0}
    # the reasoning did not reach the prefix: forced as </think><answer>Image, then read there
    assert second == "thinking about it" + FORCE_OPEN + "Image " and answer["logprob_token_ids"] == [11, 12]
    assert row.forced and row.answer_logits == [-0.5, -0.75] and row.text.endswith("<answer>Image 1")


def test_the_reasoning_that_reaches_the_prefix_is_not_forced(engine):
    engine.llm.reasoning = "<think>ok</think><answer>Image "
    [[row]] = engine.generate([JOB], GenerationSpec(("1", "2"), budget=4, temperature=0.0,
                                                    answer=AnswerFormat.after("<answer>Image ")))
    assert not row.forced and engine.llm.calls[1][0] == "<think>ok</think><answer>Image "


def test_free_generation_is_one_plain_request(engine):
    [[a, b]] = engine.generate([JOB], GenerationSpec((), budget=16, rollouts=2, temperature=1.0, seed=1,
                                                     answer=AnswerFormat.after(None)))
    assert len(engine.llm.calls) == 2
    for _, params in engine.llm.calls:
        assert params["max_tokens"] == 16 and "stop" not in params and "logit_bias" not in params
        assert "logprob_token_ids" not in params and params["seed"] is not None
    assert a.text == "thinking about it" and a.answer_logits is None and not a.forced and a.generated_tokens == 3


def test_the_first_token_format_reads_the_turns_first_token(engine):
    [[row]] = engine.generate([JOB], GenerationSpec(("Yes", "No"), budget=0, answer=AnswerFormat.after("")))
    [(prompt, params)] = engine.llm.calls
    assert prompt == "" and params["logprob_token_ids"] == [21, 22]
    assert row.answer_logits == [-0.5, -0.75] and row.text == "1" and row.generated_tokens == 0


def test_the_default_format_is_unchanged(engine):
    [[row]] = engine.generate([JOB], GenerationSpec(("1", "2"), budget=0))
    [(prompt, _)] = engine.llm.calls
    assert prompt == "<think>\n</think>\n<answer>"
