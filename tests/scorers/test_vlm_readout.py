"""The one-pass soft read-out on the tiny Qwen2.5-VL: equality with a separate forward pass,
forcing, and the answer-position state machine."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("vlm")

import torch  # noqa: E402

from prefbench.engines.base import FORCE_CLOSED, FORCE_OPEN, GenerationSpec, Job  # noqa: E402
from prefbench.engines.hf_readout import AnswerReadout  # noqa: E402
from prefbench.engines.transformers import TransformersEngine  # noqa: E402
from prefbench.scorers.vlm import prompts  # noqa: E402


@pytest.fixture(scope="session")
def backend(tiny_vlm_dir):
    b = TransformersEngine(model=str(tiny_vlm_dir), device="cpu")
    b.load()
    return b


def gen(engine, jobs, **kw):
    kw["candidates"] = tuple(kw["candidates"])
    return engine.generate(jobs, GenerationSpec(**kw))


def _planner(max_batch_tokens, max_batch_rows):
    e = TransformersEngine(model="unused", max_batch_tokens=max_batch_tokens)
    e.max_batch_rows = max_batch_rows
    return e


def _image(seed: int, size=(64, 48)):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _jobs():
    scale = prompts.RatingScale()
    return [
        Job(prompts.rating_messages("two red circles", scale), [_image(1)], "a"),
        Job(prompts.rating_messages("a much longer prompt about three blue squares on grey", scale),
            [_image(2, (80, 64))], "b"),
        Job(prompts.pairwise_messages("one green triangle"), [_image(3), _image(4)], "c"),
    ]


def _second_pass(backend, job, generated_prefix, candidates):
    """Logits at the answer position from a separate, unbatched forward pass."""
    enc = backend.encode(job)
    ids = torch.cat([enc["input_ids"], torch.tensor([generated_prefix], dtype=torch.long)], dim=1)
    extra = ids.shape[1] - enc["input_ids"].shape[1]
    inputs = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
    if "mm_token_type_ids" in enc:
        inputs["mm_token_type_ids"] = torch.cat([enc["mm_token_type_ids"], torch.zeros(1, extra, dtype=torch.long)], 1)
    with torch.no_grad():
        logits = backend.hf_model(input_ids=ids, attention_mask=torch.ones_like(ids), **inputs).logits[0, -1]
    return logits[[backend.single_token_id(c) for c in candidates]].double().numpy()


def test_one_pass_equals_second_forward_pass(backend):
    jobs = _jobs()
    digits = [str(d) for d in range(10)]  # one candidate set for rating and pairwise jobs alike
    results = gen(backend, jobs, candidates=digits, budget=6, rollouts=2, temperature=1.0, seed=3)
    assert [len(r) for r in results] == [2, 2, 2]
    checked = 0
    for job, rows in zip(jobs, results):
        assert rows[0].generated_ids != rows[1].generated_ids  # two sampled rollouts
        for row in rows:
            assert row.forced  # a random model never writes <answer> in 6 tokens
            assert row.answer_step == len(row.generated_ids) - 1
            prefix = row.generated_ids[:row.answer_step]
            assert backend._decode(prefix).endswith(prompts.ANSWER_PREFIX)
            one_pass = np.array(row.answer_logits)
            two_pass = _second_pass(backend, job, prefix, digits)
            np.testing.assert_allclose(one_pass, two_pass, rtol=1e-4, atol=1e-4)
            # the soft probabilities (what scores are made of) agree tightly
            p1 = np.exp(one_pass - one_pass.max())
            p2 = np.exp(two_pass - two_pass.max())
            np.testing.assert_allclose(p1 / p1.sum(), p2 / p2.sum(), atol=1e-5)
            checked += 1
    assert checked == 6


def test_prefill_only_equals_manual_forward(backend):
    job = _jobs()[0]
    (row,), = gen(backend, [job], candidates=("1", "2", "3", "4", "5"), budget=0)
    enc = backend.encode(job, "<think>\n</think>\n<answer>")
    with torch.no_grad():
        logits = backend.hf_model(**enc).logits[0, -1]
    expected = logits[[backend.single_token_id(c) for c in "12345"]].double().numpy()
    np.testing.assert_allclose(row.answer_logits, expected, rtol=1e-4, atol=1e-4)
    assert not row.forced and row.generated_ids == []


def test_budget_forcing_emits_the_prefix_and_greedy_is_deterministic(backend):
    job = _jobs()[0]
    a = gen(backend, [job], candidates=("0", "1"), budget=5, temperature=0.0)[0][0]
    b = gen(backend, [job], candidates=("0", "1"), budget=5, temperature=0.0)[0][0]
    assert a.generated_ids == b.generated_ids and a.answer_logits == b.answer_logits
    # 5 reasoning tokens, then the forced text, then the answer token
    assert len(a.generated_ids) == 5 + len(backend.force_open) + 1
    assert a.generated_ids[5:5 + len(backend.force_open)] == backend.force_open
    assert FORCE_OPEN.strip() in a.text and a.forced


# --- the state machine, driven token by token -------------------------------------------

TOKENS = ["<pad>", "a", " b", "<ans", "wer>", "</think>", "\n", "<answer>", "1", "0", "<eos>", "<answer>1", "</answer>"]


def _drive(stream, budget=50, tail=0):
    """Feed one row's token stream through the processor as generate would: call it, pick the
    token (the forced one when only one is allowed, else the stream's, else "0"), append, then
    ask the stopping criteria. Returns (readout, emitted tokens)."""
    r = AnswerReadout(TOKENS, prompt_len=2, n_rows=1, candidate_ids=[9, 8], budget=budget,
                      force_open=[5, 6, 7], force_closed=[6, 7], end_ids=[10], tail_tokens=tail)
    ids, emitted = [0, 0], []
    for step in range(len(stream) + 10):
        scores = torch.arange(len(TOKENS), dtype=torch.float32).unsqueeze(0)
        allowed = torch.isfinite(r(torch.tensor([ids]), scores.clone())[0]).nonzero().flatten().tolist()
        tok = allowed[0] if len(allowed) == 1 else (stream[step] if step < len(stream) else 9)
        assert tok in allowed, (step, tok, allowed)
        ids.append(tok)
        emitted.append(tok)
        if r.stopping_criteria()(torch.tensor([ids]), None)[0]:
            break
    return r, emitted


def test_natural_prefix_split_across_tokens_is_read_without_forcing():
    r, emitted = _drive([1, 2, 5, 3, 4, 8])  # "a b</think><ans" + "wer>" then the answer
    assert r.answer_step[0] == 5 and not r.forced[0] and not r.missed[0]
    assert r.answer_logits[0] == [9.0, 8.0]  # the captured logits of "0" and "1" at that step
    assert emitted == [1, 2, 5, 3, 4, 8]  # stops right after the answer token


def test_end_token_is_masked_before_the_answer():
    r = AnswerReadout(TOKENS, 2, 1, [9, 8], budget=50, force_open=[5, 6, 7], force_closed=[6, 7], end_ids=[10])
    out = r(torch.tensor([[0, 0, 1]]), torch.zeros(1, len(TOKENS)))
    assert out[0, 10] == float("-inf") and torch.isfinite(out[0, :10]).all()


def test_budget_forces_closed_or_open_prefix():
    r, emitted = _drive([1, 2, 1], budget=3)
    assert r.forced[0] and emitted == [1, 2, 1, 5, 6, 7, 9]  # open: </think>\n<answer>, then argmax
    r, emitted = _drive([5, 1, 2], budget=3)
    assert r.forced[0] and emitted == [5, 1, 2, 6, 7, 9]  # think already closed: \n<answer>


def test_prefix_swallowed_inside_a_token_is_missed_not_scored():
    r, _ = _drive([1, 11, 12])  # "<answer>1" arrives as one token: no answer position
    assert r.missed[0] and r.answer_logits[0] is None


def test_hard_readout_keeps_generating_until_the_closing_tag():
    r, emitted = _drive([1, 7, 8, 12, 1, 1], tail=8)
    assert r.answer_step[0] == 2
    assert r.end_step[0] == 4  # "a<answer>1</answer>" kept, nothing after
    assert FORCE_CLOSED.endswith(prompts.ANSWER_PREFIX)


def test_shared_anchor_image_is_encoded_once_with_identical_results(backend):
    anchor = _image(7)
    msgs = prompts.pairwise_messages("two red circles")
    jobs = [Job(msgs, [anchor, _image(10 + i)], f"j{i}", ["anchor", f"c{i}"]) for i in range(3)]
    digits = ("0", "1")
    backend.share_images = False
    plain = gen(backend, jobs, candidates=digits, budget=3, temperature=0.0)
    before = dict(backend.image_stats)
    backend.share_images = True
    try:
        shared = gen(backend, jobs, candidates=digits, budget=3, temperature=0.0)
    finally:
        backend.share_images = True
    assert backend.image_stats["encoded"] - before["encoded"] == 4  # 1 anchor + 3 candidates
    assert backend.image_stats["shared"] - before["shared"] == 2
    for a, b in zip(plain, shared):
        assert a[0].generated_ids == b[0].generated_ids
        np.testing.assert_allclose(a[0].answer_logits, b[0].answer_logits, rtol=1e-5, atol=1e-5)


def test_plan_sorts_by_length_and_respects_the_token_budget():
    b = _planner(1000, 8)
    lengths = [100, 300, 50, 200, 120]
    batches = b.plan(lengths, rows_per_job=2, new_tokens=100)
    flat = [i for batch in batches for i in batch]
    assert flat == sorted(range(5), key=lambda i: -lengths[i])  # longest first, each job once
    for batch in batches:
        width = max(lengths[i] for i in batch)
        assert len(batch) * 2 * (width + 100) <= 1000
    assert batches == [[1], [3], [4, 0], [2]]
    assert _planner(10**9, 4).plan([10] * 10, 2, 5) == [
        [0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]  # at most 4 rows = 2 jobs x 2 rollouts


def test_sampled_rollouts_do_not_depend_on_batch_composition(backend):
    jobs = _jobs()
    kw = dict(candidates=("1", "2", "3"), budget=6, rollouts=2, temperature=1.0, top_p=0.95, seed=5)
    alone = gen(backend, [jobs[1]], **kw)[0]
    together = gen(backend, jobs, **kw)[1]  # padded, batched with other jobs
    for a, b in zip(alone, together):
        assert a.generated_ids == b.generated_ids
        np.testing.assert_allclose(a.answer_logits, b.answer_logits, rtol=1e-4, atol=1e-4)
    assert alone[0].generated_ids != alone[1].generated_ids
    other = gen(backend, [jobs[1]], **{**kw, "seed": 6})[0]
    assert other[0].generated_ids != alone[0].generated_ids


def test_sample_rows_follows_softmax_and_top_p():
    from prefbench.engines.hf_readout import sample_rows

    n = 4000
    logits = torch.tensor([[0.0, float(np.log(3.0))]]).repeat(n, 1)
    seeds = torch.arange(n, dtype=torch.int64) * 7919 + 13
    picks = sample_rows(logits, seeds, step=0, temperature=1.0)
    assert abs(picks.float().mean().item() - 0.75) < 0.03  # P(token 1) = 3 / (1 + 3)
    assert torch.equal(picks, sample_rows(logits, seeds, step=0, temperature=1.0))  # same seeds, same draws
    assert not torch.equal(picks, sample_rows(logits, seeds, step=1, temperature=1.0))
    probs = torch.tensor([[0.5, 0.3, 0.2]]).log().repeat(n, 1)
    nucleus = sample_rows(probs, seeds, step=0, temperature=1.0, top_p=0.6)
    assert set(nucleus.tolist()) == {0, 1}  # 0.5 < 0.6: the nucleus needs token 1, never token 2
    share = (nucleus == 0).float().mean().item()
    assert abs(share - 0.5 / 0.8) < 0.03


def test_qwen2_vl_goes_through_the_same_path(tiny_qwen2_vl_dir):
    b = TransformersEngine(model=str(tiny_qwen2_vl_dir), device="cpu")
    b.load()
    assert type(b.hf_model).__name__ == "Qwen2VLForConditionalGeneration"
    jobs = _jobs()
    digits = [str(d) for d in range(10)]
    results = gen(b, jobs, candidates=digits, budget=4, rollouts=1, temperature=1.0, seed=1)
    for job, (row,) in zip(jobs, results):
        assert row.forced
        prefix = row.generated_ids[:row.answer_step]
        np.testing.assert_allclose(row.answer_logits, _second_pass(b, job, prefix, digits), rtol=1e-4, atol=1e-4)
