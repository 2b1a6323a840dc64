"""``max_pixels`` is set on the loaded image processor, not passed through
``AutoProcessor.from_pretrained``: transformers 5 also gives such keywords to the tokenizer, which
saved them into a trained model's tokenizer_config.json and passed them back on every processor
call (Qwen2-VL's FutureWarning "Passing `min_pixels` and `max_pixels` to a processor call is
deprecated", seen in every training run with --max-pixels; issue 30 item 10)."""

from __future__ import annotations

import json
import warnings

from PIL import Image

CAP = 56 * 56
QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>a red cube"


def _call_quietly(processor) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        out = processor(text=[QWEN_IMAGE], images=[Image.new("RGB", (224, 224), "red")], return_tensors="pt")
    t, h, w = out["image_grid_thw"][0].tolist()
    assert h * w * 14 * 14 <= CAP  # the cap holds: a 224x224 image is scaled down to 56x56 pixels


def test_training_processor_caps_images_without_the_deprecated_call_keywords(tiny_vlm_dir, tmp_path):
    from prefbench.training.backends import load_processor

    processor = load_processor(str(tiny_vlm_dir), CAP)
    assert processor.image_processor.size["longest_edge"] == CAP
    assert "max_pixels" not in processor.tokenizer.init_kwargs
    _call_quietly(processor)
    processor.save_pretrained(tmp_path / "out")  # what a trained model carries to the scorers
    assert "max_pixels" not in json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())
    from transformers import AutoProcessor

    again = AutoProcessor.from_pretrained(tmp_path / "out")
    assert again.image_processor.size["longest_edge"] == CAP
    _call_quietly(again)


def test_transformers_engine_caps_images_the_same_way(tiny_vlm_dir):
    from prefbench.registry import build

    scorer, _ = build("expected_rating", {"model": str(tiny_vlm_dir), "max_pixels": CAP, "max_new_tokens": 0})
    scorer.setup()
    try:
        processor = scorer.engine.processor
        assert processor.image_processor.size["longest_edge"] == CAP
        assert "max_pixels" not in processor.tokenizer.init_kwargs
        _call_quietly(processor)
    finally:
        scorer.close()
