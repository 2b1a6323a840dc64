"""A tiny random-weight Qwen2.5-VL checkpoint for tests and users' offline smoke tests.

``python -m prefbench.testing.tiny_vlm OUT_DIR`` writes a checkpoint (a few MB) that
``AutoModelForImageTextToText`` + ``AutoProcessor`` load with ``HF_HUB_OFFLINE=1``: the real
transformers classes (``Qwen2_5_VLForConditionalGeneration``, ``Qwen2_5_VLProcessor``), random
weights from a fixed seed, and a small byte-level BPE tokenizer trained here with Qwen's
pre-tokenizer and Qwen's special tokens in their official order.

Constraints the tokenizer meets (tests check them):

* the digits ``0``-``9`` are single tokens (rating and pairwise answers);
* every token id decodes to distinct, non-empty text (the vocabulary is printable ASCII plus
  whitespace, so no token is a lone UTF-8 continuation byte), and the model's vocabulary size
  equals the tokenizer's, so a sampled id always decodes to something;
* head_dim = hidden / heads = 32, the minimum vLLM's CPU attention accepts.

Characters outside the alphabet (non-ASCII) have no token and are dropped by the tokenizer:
fine for a smoke-test model, never for real use.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: Qwen2.5's special tokens in their official order (ids follow the regular vocabulary).
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)

# Qwen2's pre-tokenizer regex (digits are split one by one).
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)

TEXT_CONFIG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                   num_key_value_heads=1, max_position_embeddings=4096, rms_norm_eps=1e-6,
                   rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0,
                                    "mrope_section": [4, 6, 6]})
VISION_CONFIG = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=64,
                     patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                     fullatt_block_indexes=[1])
#: Qwen2-VL's vision tower takes other field names (embed_dim, mlp_ratio; hidden_size = output)
QWEN2_VL_VISION_CONFIG = dict(depth=2, embed_dim=64, hidden_size=64, mlp_ratio=2, num_heads=2, patch_size=14,
                              spatial_merge_size=2, temporal_patch_size=2)
ARCHS = ("qwen2_5_vl", "qwen2_vl")
VOCAB_SIZE = 1024
TINY_BUDGET = 32
SEED = 1234

_CORPUS_WORDS = """
the a an of and to in is it that this with for on as are be by at or from image images picture
prompt think answer rating rate scale better worse first second which more less quality aesthetic
aesthetics alignment detail details color colour colours shape shapes circle square triangle red green
blue yellow white black grey background one two three four five object objects text human preference
preferred compare comparing generated generation model score scores good bad best worst high low
reason reasoning step steps look looks matches match describe description sharp blurry noise noisy
user assistant system you helpful please output only between tags inside then final number
"""


def _alphabet() -> list[str]:
    """Printable ASCII plus tab/newline/CR, as the byte-level characters ByteLevel maps them to."""
    from tokenizers import pre_tokenizers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    chars = [chr(c) for c in range(32, 127)] + ["\t", "\n", "\r"]
    return [byte_level.pre_tokenize_str(ch)[0][0] for ch in chars]


#: frozen here (not read from the demo module or the template folder) so that the tokenizer,
#: and with it every tiny checkpoint built from a seed, stays the same as those evolve
_CORPUS_LINES = (
    "one two three red green blue yellow purple orange circle circles square squares triangle triangles",
    "on a white black grey beige background above below left of right of next to",
    "This image was generated from the text prompt: Rate how much people would like this image, judging "
    "how well it follows the prompt and its visual quality (aesthetics, detail, artifacts), on a scale from "
    "(worst) to (best).",
    "First think it through inside <think> </think> tags, then give the rating as a single number inside "
    "<answer> </answer> tags, for example <think>...</think><answer>3</answer>.",
    "Two images were generated from the same text prompt: Image 1: Image 2: Which image would people "
    "prefer? answer inside <answer> </answer> tags with 1 if Image 2 is better than Image 1, or 0 if Image 1 "
    "is better.",
    "<think>I compare the images.</think><answer>3</answer> 0 1 2 3 4 5 6 7 8 9",
)


def _corpus() -> list[str]:
    """Training text for the tokenizer: a small fixed English sample around our prompts."""
    return [" ".join(_CORPUS_WORDS.split()), *_CORPUS_LINES]


def build_tokenizer(vocab_size: int = VOCAB_SIZE):
    """Train the byte-level BPE and wrap it as a ``Qwen2TokenizerFast``-compatible tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    alphabet = _alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(QWEN_SPECIAL_TOKENS), initial_alphabet=alphabet, limit_alphabet=len(alphabet),
        show_progress=False, special_tokens=[],
    )
    tok.train_from_iterator(_corpus() * 4, trainer=trainer)
    # Re-wrap the trained vocabulary and merges in transformers' own Qwen2Tokenizer, which builds
    # the same pipeline (NFC, Qwen regex split, byte-level) from them.
    from transformers import Qwen2Tokenizer

    model = json.loads(tok.to_str())["model"]
    vocab = dict(model["vocab"])
    for token in QWEN_SPECIAL_TOKENS:  # official order, ids right after the regular vocabulary
        vocab[token] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    qwen = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, eos_token="<|im_end|>",
                          pad_token="<|endoftext|>", clean_up_tokenization_spaces=False,
                          model_max_length=4096, errors="replace")
    qwen.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS)})
    qwen.padding_side = "left"
    return qwen


def chat_template() -> str:
    """The Qwen2.5-VL chat layout, in prefbench's own template (:data:`chat_templates.QWEN2_VL`)."""
    from prefbench.testing.chat_templates import QWEN2_VL

    return QWEN2_VL


def new_model_and_processor(text_config: dict, vision_config: dict, seed: int, arch: str = "qwen2_5_vl",
                            pixels: tuple[int, int] = (28 * 28, 112 * 112)):
    """A randomly initialised Qwen2.5-VL (or Qwen2-VL) of the given sizes with this module's
    tokenizer, chat template and image processor; ``(model, processor)``.

    ``pixels``: the processor's ``(min_pixels, max_pixels)``; the default keeps images at most
    112 x 112 (16 visual tokens); ``(224 * 224, 224 * 224)`` resizes every image to 224 x 224
    (64 visual tokens), which the demo base model uses for finer spatial detail.

    Also used by ``prefbench.demo_zoo.pretrain`` for the demo world's (larger) base model."""
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    qwen2 = arch == "qwen2_vl"
    config_cls, model_cls = (Qwen2VLConfig, Qwen2VLForConditionalGeneration) if qwen2 else (
        Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration)
    processor_cls = Qwen2VLProcessor if qwen2 else Qwen2_5_VLProcessor

    tokenizer = build_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    config = config_cls(
        text_config={**text_config, "vocab_size": len(tokenizer), "bos_token_id": ids["<|endoftext|>"],
                     "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]},
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = model_cls(config)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.do_sample = False
    kw = dict(min_pixels=pixels[0], max_pixels=pixels[1], patch_size=14, merge_size=2, temporal_patch_size=2)
    processor = processor_cls(image_processor=Qwen2VLImageProcessor(**kw), tokenizer=tokenizer,
                              video_processor=Qwen2VLVideoProcessor(**kw), chat_template=chat_template())
    return model, processor


def build_tiny_vlm(out_dir: str | Path, seed: int = SEED, arch: str = "qwen2_5_vl") -> Path:
    """Write the tiny checkpoint + processor to ``out_dir`` and return it.

    ``arch``: ``qwen2_5_vl`` (default, the paper's model family) or ``qwen2_vl``."""
    import torch

    vision = QWEN2_VL_VISION_CONFIG if arch == "qwen2_vl" else VISION_CONFIG
    model, processor = new_model_and_processor(TEXT_CONFIG, vision, seed, arch)
    model.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Random init leaves logits nearly uniform; a larger lm_head spreads them so that greedy and
    # sampled decoding differ visibly and soft scores are not all ~equal.
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, 0.5)
    # the VLM scorers' default reasoning budget for this checkpoint: short, so that CPU smoke
    # runs over the whole demo split take minutes, not hours
    model.generation_config.max_new_tokens = TINY_BUDGET
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    (out / "prefbench_tiny.json").write_text(json.dumps({"builder": "prefbench.testing.tiny_vlm", "seed": seed,
                                                         "arch": arch}, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefbench.testing.tiny_vlm", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="folder to write the checkpoint and processor into")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--arch", choices=ARCHS, default="qwen2_5_vl")
    args = parser.parse_args(argv)
    path = build_tiny_vlm(args.out_dir, seed=args.seed, arch=args.arch)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"wrote tiny {args.arch} to {path} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
