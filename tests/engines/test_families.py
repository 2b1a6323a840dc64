"""Every model family prefbench has a profile for, on a tiny random checkpoint built from the
family's real transformers classes (prefbench.testing.tiny_families): all four VLM scorers on
items whose images differ in size within one batch, shared vs unshared image encodings giving
the same scores, and the refusals (Llama 4, a pixel budget a family has no term for)."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("vlm")

from prefbench.data.model import ImageRef, Item  # noqa: E402
from prefbench.engines.profiles import model_type_of, profile_for  # noqa: E402
from prefbench.errors import UsageError  # noqa: E402
from prefbench.registry import build  # noqa: E402

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "gemma3", "idefics3", "smolvlm", "llava_onevision", "llava_next",
            "internvl", "mistral3")
#: families whose profile shares image features between slots
SHARING = {"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "gemma3"}
SIZES = [(64, 48), (40, 72), (56, 56), (30, 50)]


@pytest.fixture(scope="session")
def family_dir(tmp_path_factory):
    from prefbench.testing.tiny_families import build_tiny_family
    from prefbench.testing.tiny_vlm import ARCHS, build_tiny_vlm

    cache = {}

    def get(family):
        if family not in cache:
            out = tmp_path_factory.mktemp(family) / "model"
            cache[family] = build_tiny_vlm(out, arch=family) if family in ARCHS else build_tiny_family(family, out)
        return cache[family]

    return get


def _png(size, seed) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _items():
    """Two items with images of four different sizes (every real dataset mixes sizes)."""
    out = []
    for n, item_id in enumerate(("p0", "p1")):
        refs = [ImageRef(f"{item_id}/{k}.png", data=_png(SIZES[(k + n) % 4], 10 * n + k)) for k in range(3)]
        out.append(Item(item_id, "two red circles", refs, [1, 2, 3]))
    return out


def _score(name, model, **params):
    scorer, _ = build(name, {"model": str(model), "max_new_tokens": 3, "dtype": "float32", **params})
    scorer.setup()
    try:
        items = _items()
        res = scorer.score_batch([(item, list(range(item.n_images))) for item in items])
        return res, scorer
    finally:
        scorer.close()


@pytest.mark.parametrize("family", FAMILIES)
def test_all_four_scorers_run_on_mixed_image_sizes(family, family_dir):
    model = family_dir(family)
    assert profile_for(model_type_of(str(model))).family != "generic"
    for name in ("expected_rating", "anchor_pairwise", "naive_sampling", "zero_shot"):
        res, scorer = _score(name, model)
        results = [r for item in res for r in item.values()]
        assert len(results) == 6
        if name == "naive_sampling":  # a random model's answer text rarely parses: unparsed, never error
            assert all(r.status in ("ok", "unparsed") for r in results), [r.error for r in results]
        else:
            assert all(r.status == "ok" for r in results), [r.error for r in results]
            assert all(np.isfinite(r.score) for r in results)
        summary = scorer.summary()["engine"]
        assert summary["profile"] == profile_for(model_type_of(str(model))).family
        if family not in SHARING:
            assert summary["image_sharing"] is False and "no image-sharing hook" in summary["image_sharing_off"]


@pytest.mark.parametrize("family", sorted(SHARING))
def test_shared_image_encodings_give_the_same_scores(family, family_dir):
    model = family_dir(family)
    shared, s1 = _score("anchor_pairwise", model, max_new_tokens=0, share_images=True)
    plain, s2 = _score("anchor_pairwise", model, max_new_tokens=0, share_images=False)
    assert s1.summary()["engine"]["image_encodings_shared"] > 0
    assert s2.summary()["engine"]["image_encodings_shared"] == 0
    for a, b in zip(shared, plain):
        for k in a:
            assert a[k].status == b[k].status == "ok"
            assert a[k].score == pytest.approx(b[k].score, abs=1e-5)
    # rollouts: each job's images are encoded once for all its rollouts
    res, s3 = _score("expected_rating", model, max_new_tokens=2, rollouts=2)
    assert all(r.status == "ok" for item in res for r in item.values())
    assert s3.summary()["engine"]["image_encodings_shared"] >= 6


def test_refusals_are_clear(family_dir, tmp_path):
    llama4 = family_dir("llama4")
    scorer, _ = build("expected_rating", {"model": str(llama4), "max_new_tokens": 0})
    with pytest.raises(UsageError, match="Llama 4 models cannot be scored.*inside transformers"):
        scorer.setup()
    scorer, _ = build("expected_rating", {"model": str(family_dir("gemma3")), "max_new_tokens": 0, "max_pixels": 4096})
    with pytest.raises(UsageError, match="Gemma 3 processor resizes every image to a fixed size"):
        scorer.setup()


def test_mistral3_prompt_does_not_depend_on_the_date(family_dir):
    from transformers import AutoProcessor

    from prefbench.engines.profiles import render_prompt
    from prefbench.scorers.vlm import prompts

    model = family_dir("mistral3")
    processor = AutoProcessor.from_pretrained(model)
    profile = profile_for(model_type_of(str(model)))
    text = render_prompt(processor, profile, prompts.rating_messages("a cat"))
    assert "2026" not in text and "2025" not in text and "Today" not in text
    bos = processor.tokenizer.bos_token
    assert not text.startswith(bos)  # the tokenizer adds the one BOS
    ids = processor.tokenizer(text)["input_ids"]
    assert ids.count(processor.tokenizer.bos_token_id) == 1


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_two_grpo_steps_train_the_language_model_only(family, family_dir, tmp_path):
    skip_without_extra("train")
    from prefbench.training import TrainConfig, train

    out = tmp_path / "trained"
    cfg = TrainConfig(task="rating", model=str(family_dir(family)), output=str(out), dataset="demo", lora=True,
                      num_generations=2, max_completion_length=6, max_steps=2, limit=4, learning_rate=1e-3,
                      save_steps=50, progress=False)
    if family == "llava_onevision":
        with pytest.raises(UsageError, match="cannot train LLaVA-OneVision models: TRL's GRPOTrainer"):
            train(cfg)
        return
    rec = train(cfg)
    assert rec["steps"] == 2 and rec["base_model"]["revision"].startswith("sha256:")
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    targets = adapter["target_modules"]
    assert targets == profile_for(model_type_of(str(family_dir(family)))).lora_targets
    # the regex picks language-model projections and nothing of the vision tower
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(family_dir(family))
    hits = [n for n, _ in model.named_modules() if re.fullmatch(targets, n)]
    assert hits and all(("language_model" in n or "text_model" in n) for n in hits), hits[:5]
    assert not any("vision" in n or "visual" in n for n in hits)
