"""A tiny random HPSv3 checkpoint (same architecture, a few MB) for tests and users' smoke tests.

``python -m prefbench.testing.tiny_hpsv3 OUT_DIR`` writes one folder that serves both as the
``--model`` of ``prefbench run --scorer hpsv3`` and as the ``model_name_or_path`` of the official
package:

* ``HPSv3.safetensors``: every weight under the official (transformers 4.45) names, the embedding
  and ``lm_head`` with one row more than the base tokenizer (``<|Reward|>``, as the official
  ``resize_token_embeddings`` leaves them), and the RankNet head ``rm_head.{0,3,5}`` (hidden ->
  1024 -> 16 -> 2);
* the base: a tiny Qwen2-VL (:mod:`prefbench.testing.tiny_vlm`'s tokenizer and chat template) with
  ``config.json``, the processor files and ``model.safetensors`` (the base weights, which the
  official loader reads before the checkpoint overwrites them; prefbench never reads them). The
  processor's pixel bounds are Qwen2-VL-7B-Instruct's (3136 .. 12845056), so HPSv3's 200704-pixel
  images pass through it unchanged, as with the real base.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SEED = 4321
#: Qwen/Qwen2-VL-7B-Instruct's preprocessor_config.json bounds
BASE_PIXELS = (56 * 56, 28 * 28 * 16384)


def _legacy_config(config) -> dict:
    """The base's config.json as the hub's Qwen2-VL repos write it (flat text fields, ``rope_scaling``
    with ``mrope_section``), which transformers 4.45 and 5 both read."""
    text, vision = config.text_config, config.vision_config
    rope = text.rope_parameters
    return {
        "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl",
        "hidden_size": text.hidden_size, "intermediate_size": text.intermediate_size,
        "num_hidden_layers": text.num_hidden_layers, "num_attention_heads": text.num_attention_heads,
        "num_key_value_heads": text.num_key_value_heads, "hidden_act": text.hidden_act,
        "max_position_embeddings": text.max_position_embeddings, "rms_norm_eps": text.rms_norm_eps,
        "rope_theta": rope["rope_theta"], "rope_scaling": {"type": "mrope", "mrope_section": rope["mrope_section"]},
        "vocab_size": text.vocab_size, "tie_word_embeddings": False, "attention_dropout": 0.0,
        "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": text.num_hidden_layers,
        "bos_token_id": text.bos_token_id, "eos_token_id": text.eos_token_id, "torch_dtype": "float32",
        "vision_start_token_id": config.vision_start_token_id, "vision_end_token_id": config.vision_end_token_id,
        "vision_token_id": config.vision_start_token_id + 2, "image_token_id": config.image_token_id,
        "video_token_id": config.video_token_id, "use_cache": True,
        "vision_config": {"depth": vision.depth, "embed_dim": vision.embed_dim, "mlp_ratio": vision.mlp_ratio,
                          "num_heads": vision.num_heads, "in_chans": 3, "hidden_size": vision.hidden_size,
                          "patch_size": vision.patch_size, "spatial_merge_size": vision.spatial_merge_size,
                          "spatial_patch_size": vision.patch_size, "temporal_patch_size": vision.temporal_patch_size},
    }


def write_hub_layout(config, processor, out: Path) -> None:
    """config.json, tokenizer files, preprocessor_config.json and chat_template.json in the layout
    of the hub's Qwen/Qwen2-VL-7B-Instruct, readable by transformers 4.45 (the official package's
    pin) and 5."""
    ip = processor.image_processor
    (out / "config.json").write_text(json.dumps(_legacy_config(config), indent=2) + "\n")
    processor.tokenizer.save_pretrained(out)
    tok_path = out / "tokenizer_config.json"
    tok = json.loads(tok_path.read_text())
    tok.pop("backend", None)
    tok["additional_special_tokens"] = tok.pop("extra_special_tokens", [])
    tok.pop("chat_template", None)
    tok_path.write_text(json.dumps(tok, indent=2) + "\n")
    (out / "preprocessor_config.json").write_text(json.dumps({
        "min_pixels": BASE_PIXELS[0], "max_pixels": BASE_PIXELS[1], "patch_size": ip.patch_size,
        "temporal_patch_size": ip.temporal_patch_size, "merge_size": ip.merge_size,
        "image_mean": list(ip.image_mean), "image_std": list(ip.image_std),
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2VLProcessor"}, indent=2) + "\n")
    (out / "chat_template.json").write_text(json.dumps({"chat_template": processor.chat_template}, indent=2) + "\n")
    for stray in ("chat_template.jinja", "processor_config.json"):
        (out / stray).unlink(missing_ok=True)


#: Qwen2-VL-7B-Instruct's sizes (its config.json), for speed benchmarks with random weights
TEXT_7B = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, max_position_embeddings=32768, rms_norm_eps=1e-6,
               rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]})
VISION_7B = dict(depth=32, embed_dim=1280, hidden_size=3584, mlp_ratio=4, num_heads=16, patch_size=14,
                 spatial_merge_size=2, temporal_patch_size=2)
SHAPES = ("tiny", "7b")


def build_tiny_hpsv3(out_dir: str | Path, seed: int = SEED, shape: str = "tiny") -> Path:
    """Write the tiny HPSv3 folder to ``out_dir`` and return it. ``shape="7b"``: Qwen2-VL-7B's sizes
    with random bfloat16 weights (about 16 GB; the tiny tokenizer, so the embedding stays small) and
    no base ``model.safetensors``: for speed benchmarks of prefbench's side on a GPU."""
    import torch
    from safetensors.torch import save_file

    from prefbench.scorers.hpsv3.model import build_head, official_keys
    from prefbench.testing.tiny_vlm import QWEN2_VL_VISION_CONFIG, TEXT_CONFIG, new_model_and_processor

    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    previous = torch.get_default_dtype()
    if shape == "7b":
        torch.set_default_dtype(torch.bfloat16)
    try:
        text, vision = (TEXT_CONFIG, QWEN2_VL_VISION_CONFIG) if shape == "tiny" else (TEXT_7B, VISION_7B)
        model, processor = new_model_and_processor(text, vision, seed, "qwen2_vl", pixels=(56 * 56, 28 * 28 * 1280))
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    hidden = model.config.text_config.hidden_size
    body = {k: v.detach().contiguous() for k, v in model.model.state_dict().items()}
    lm_head = model.lm_head.weight.detach()
    if shape == "tiny":  # the official loader reads the base weights before the checkpoint replaces them
        base = official_keys(body, {}, lm_head)
        save_file({k: v.contiguous() for k, v in base.items()}, str(out / "model.safetensors"),
                  metadata={"format": "pt"})
    write_hub_layout(model.config, processor, out)

    gen = torch.Generator().manual_seed(seed + 1)
    extra = lambda w: torch.cat([w, (torch.randn(1, w.shape[1], generator=gen) * 0.02).to(w.dtype)])  # noqa: E731
    body["language_model.embed_tokens.weight"] = extra(body["language_model.embed_tokens.weight"])
    torch.manual_seed(seed + 2)
    head = build_head(hidden)  # float32, as the official rm_head
    with torch.no_grad():  # a visible spread of mu and log sigma between images
        head[0].weight.normal_(0.0, 0.5)
        head[5].weight.normal_(0.0, 0.5)
    checkpoint = official_keys(body, {k: v.detach() for k, v in head.state_dict().items()}, extra(lm_head))
    save_file({k: v.contiguous() for k, v in checkpoint.items()}, str(out / "HPSv3.safetensors"),
              metadata={"format": "pt"})
    (out / "prefbench_tiny.json").write_text(json.dumps({"builder": "prefbench.testing.tiny_hpsv3", "seed": seed,
                                                         "shape": shape}, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefbench.testing.tiny_hpsv3",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="folder to write the checkpoint, base config and processor into")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--shape", choices=SHAPES, default="tiny", help="7b: Qwen2-VL-7B sizes, random bf16 (~16 GB)")
    args = parser.parse_args(argv)
    path = build_tiny_hpsv3(args.out_dir, seed=args.seed, shape=args.shape)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"wrote tiny HPSv3 to {path} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
