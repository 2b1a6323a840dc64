"""The answer format a GenerationSpec carries (engines/base.AnswerFormat): another answer prefix is
forced and read where the format says, free generation reads only text, and the default format is
what every scorer had before (its forced texts and prefill are the module constants)."""

from __future__ import annotations

import pytest

from prefbench.engines.base import (
    DEFAULT_ANSWER,
    FORCE_CLOSED,
    FORCE_OPEN,
    PREFILL_ANSWER,
    AnswerFormat,
    GenerationSpec,
    Job,
)


def test_the_default_format_is_the_papers_and_after_builds_the_others():
    assert DEFAULT_ANSWER == AnswerFormat.after("<answer>") == GenerationSpec(("1",), 4).answer
    assert (DEFAULT_ANSWER.force_open, DEFAULT_ANSWER.force_closed, DEFAULT_ANSWER.prefill) == (
        FORCE_OPEN, FORCE_CLOSED, PREFILL_ANSWER)
    think = AnswerFormat.after("<answer>Image ")
    assert think.force_open == FORCE_OPEN + "Image " and think.prefill == PREFILL_ANSWER + "Image "
    assert think.stop == "</answer>"
    score = AnswerFormat.after("Final Score: ")
    assert (score.force_open, score.prefill, score.stop) == ("\nFinal Score: ", "Final Score: ", None)
    first = AnswerFormat.after("")
    assert (first.prefix, first.prefill, first.force_open) == ("", "", "")
    assert AnswerFormat.after(None).free and not think.free
    with pytest.raises(ValueError, match="must end with the prefix"):
        AnswerFormat("X: ", force_open="oops")


@pytest.fixture(scope="module")
def engine(tiny_vlm_dir):
    from prefbench.engines.transformers import TransformersEngine

    eng = TransformersEngine(model=str(tiny_vlm_dir))
    eng.load(("1", "2"), answer=AnswerFormat.after("<answer>Image "))
    yield eng
    eng.close()


def _job():
    from PIL import Image

    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                         {"type": "text", "text": "Which image is better?"}]}]
    return Job(msgs, [Image.new("RGB", (32, 32), "red"), Image.new("RGB", (32, 32), "blue")], "k", ["a", "b"])


def test_a_judge_prefix_is_forced_and_read_in_the_same_pass(engine):
    fmt = AnswerFormat.after("<answer>Image ")
    spec = GenerationSpec(("1", "2"), budget=6, rollouts=2, temperature=1.0, seed=3, answer=fmt)
    rows = engine.generate([_job()], spec)[0]
    assert len(rows) == 2
    for row in rows:
        # the random model never writes the prefix: forced, and the answer read right after it
        assert row.text.endswith("<answer>Image " + row.text[-1:]) or row.forced
        assert row.answer_logits is not None and len(row.answer_logits) == 2
        assert 0 < row.answer_mass <= 1
    # a separate forward pass over the forced text gives the same answer logits
    import torch

    row = rows[0]
    enc = engine.encode(_job(), "")
    ids = torch.cat([enc["input_ids"], torch.tensor([row.generated_ids[:row.answer_step]], dtype=torch.long)], dim=1)
    extra = ids.shape[1] - enc["input_ids"].shape[1]
    inputs = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
    if "mm_token_type_ids" in enc:
        inputs["mm_token_type_ids"] = torch.cat([enc["mm_token_type_ids"], torch.zeros(1, extra, dtype=torch.long)], 1)
    with torch.inference_mode():
        logits = engine.hf_model(input_ids=ids, attention_mask=torch.ones_like(ids), **inputs).logits[0, -1].float()
    cand = [engine.single_token_id(c, "<answer>Image ") for c in ("1", "2")]
    assert logits[cand].tolist() == pytest.approx(row.answer_logits, abs=1e-3)


def test_free_generation_forces_nothing_and_lets_the_turn_end(engine):
    spec = GenerationSpec((), budget=12, rollouts=3, temperature=1.0, seed=0, answer=AnswerFormat.after(None))
    rows = engine.generate([_job()], spec)[0]
    assert len(rows) == 3
    for row in rows:
        assert row.answer_logits is None and not row.forced and not row.missed
        assert 0 < row.generated_tokens <= 12 and "</think>\n<answer>" not in row.text
    with pytest.raises(ValueError, match="needs a budget"):
        engine.generate([_job()], GenerationSpec((), budget=0, answer=AnswerFormat.after(None)))


def test_prefill_reads_the_formats_own_prefill(engine):
    fmt = AnswerFormat.after("<answer>Image ")
    spec = GenerationSpec(("1", "2"), budget=0, answer=fmt)
    row = engine.generate([_job()], spec)[0][0]
    assert row.answer_logits is not None and row.generated_tokens == 0
    import torch

    enc = engine.encode(_job(), fmt.prefill)
    with torch.inference_mode():
        logits = engine.hf_model(**enc).logits[0, -1].float()
    cand = [engine.single_token_id(c, "<answer>Image ") for c in ("1", "2")]
    assert logits[cand].tolist() == pytest.approx(row.answer_logits, abs=1e-4)
