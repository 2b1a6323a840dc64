"""Tiny random-weight checkpoints of other VLM families, for tests and offline smoke tests.

``python -m prefbench.testing.tiny_families FAMILY OUT_DIR`` (or ``all OUT_DIR``, one sub-folder
per family) writes a checkpoint of a few MB that ``AutoModelForImageTextToText`` +
``AutoProcessor`` load with ``HF_HUB_OFFLINE=1``, built the way :mod:`prefbench.testing.tiny_vlm`
builds its Qwen2.5-VL: the family's real transformers config, model and processor classes, random
weights from a fixed seed, a tokenizer trained here on :func:`tiny_vlm._corpus` with the family's
own special tokens, tokenizer class and chat template, ``lm_head`` re-initialised with std 0.5 and
``generation_config.max_new_tokens`` = 32.

Families (:data:`FAMILIES`): ``qwen3_vl``, ``gemma3``, ``idefics3``, ``smolvlm`` (its processor
imports ``num2words``), ``llava_onevision``, ``llava_next``, ``internvl`` (the transformers-native
InternVL), ``mistral3`` (Pixtral processor) and ``llama4``.

Every tokenizer meets tiny_vlm's constraints: the digits ``0``-``9`` are single tokens when encoded
alone, every id decodes to non-empty text, and the model's vocabulary is exactly the tokenizer's.
Two vocabulary styles stand in for the real ones:

* byte-level BPE (GPT-2 alphabet) for the Qwen, Llama-3, SmolLM2, Tekken and Llama-4 tokenizers;
* SentencePiece-style BPE with ``▁`` for spaces for Gemma (``GemmaTokenizer``) and Mistral-7B
  (LLaVA-NeXT). Unlike the real Mistral-7B tokenizer, the tiny one prepends no ``▁`` to a text,
  so that ``"1"`` alone is one token.

Special tokens that the real tokenizers put before the regular vocabulary (Gemma, Mistral, SmolLM2,
Mistral-7B) come first here too; so Mistral3's ``[IMG]`` is id 10, as in the real checkpoints.
Characters outside printable ASCII have no token (dropped, or ``<unk>``): fine for a smoke test.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from prefbench.testing import chat_templates
from prefbench.testing.tiny_vlm import (
    PRETOKENIZE_REGEX,
    QWEN_SPECIAL_TOKENS,
    SEED,
    TINY_BUDGET,
    _alphabet,
    _corpus,
)

FAMILIES = ("qwen3_vl", "gemma3", "idefics3", "smolvlm", "llava_onevision", "llava_next", "internvl", "mistral3",
            "llama4")

#: the text model every family gets: head_dim 32 (vLLM CPU attention's minimum)
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            head_dim=32, max_position_embeddings=4096, tie_word_embeddings=False)
#: a ViT of 2 layers, hidden 64, 2 heads
VIT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
VOCAB_SIZE = 1024
METASPACE = "\u2581"

# Llama-3's pre-tokenizer regex (numbers in groups of up to 3 digits; no digit merges exist in the
# tiny vocabularies, so a digit is still one token)
LLAMA3_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
                r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
# GPT-2's (SmolLM2 splits digits on top of it)
GPT2_REGEX = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# the SentencePiece-style split (after spaces became "▁"): a word, a run of punctuation, one digit
METASPACE_REGEX = "\u2581?\\p{L}+|\u2581?[^\\p{L}\\p{N}\\s\u2581]+|\\p{N}|\u2581+|\\s+"
# Tekken's (Mistral-Small-3.1 and Pixtral)
TEKKEN_REGEX = (r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"""
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|"""
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+""")


# -- tokenizers ----------------------------------------------------------------------------------

def _train(style: str, n_regular: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A BPE vocabulary (``{token: id}``, ids 0..) and merges trained on tiny_vlm's corpus.

    ``bytelevel``: GPT-2 byte alphabet, Qwen's pre-tokenizer (digits one by one), as tiny_vlm;
    ``metaspace``: spaces as ``▁`` starting a word or a run of punctuation, digits one by one (no
    digit is ever merged, and no token spans a word and the punctuation after it)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    if style == "bytelevel":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        alphabet = _alphabet()
    elif style == "metaspace":
        tok.normalizer = normalizers.Replace(" ", METASPACE)
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(METASPACE_REGEX), behavior="isolated", invert=False)
        alphabet = [chr(c) for c in range(33, 127)] + [METASPACE, "\t", "\n", "\r"]
    else:
        raise ValueError(style)
    trainer = trainers.BpeTrainer(vocab_size=n_regular, initial_alphabet=alphabet, limit_alphabet=len(alphabet),
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator(_corpus() * 4, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return dict(model["vocab"]), merges


def _vocab(style: str, head: Sequence[str] = (), tail: Sequence[str] = ()):
    """``(vocab, merges)``: ``head`` special tokens first (ids 0..), the trained vocabulary, then
    ``tail`` special tokens, all ids contiguous."""
    regular, merges = _train(style, VOCAB_SIZE - len(head) - len(tail))
    vocab = {t: i for i, t in enumerate(head)}
    for token, _ in sorted(regular.items(), key=lambda kv: kv[1]):
        vocab.setdefault(token, len(vocab))
    for token in tail:
        vocab.setdefault(token, len(vocab))
    return vocab, merges


def _added(tokens: Sequence[str], special: bool = True) -> list:
    from tokenizers import AddedToken

    return [AddedToken(t, special=special, normalized=False) for t in tokens]


def _qwen2_tokenizer(tail: Sequence[str], *, eos: str, pad: str, plain: Sequence[str] = (),
                     named: dict[str, str] | None = None):
    """Qwen2Tokenizer (Qwen3-VL, InternVL, LLaVA-OneVision): Qwen's byte-level pipeline; ``tail``
    special tokens after the regular vocabulary; ``plain``: added tokens that are not special
    (Qwen3's ``<think>``); ``named``: model-specific token attributes (``tokenizer.image_token``)."""
    from transformers import Qwen2Tokenizer

    vocab, merges = _vocab("bytelevel", tail=[*tail, *plain])
    kw = {"extra_special_tokens": dict(named)} if named else {}
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token=eos, pad_token=pad,
                         clean_up_tokenization_spaces=False, model_max_length=4096, errors="replace", **kw)
    tok.add_tokens(_added(tail), special_tokens=True)
    if plain:
        tok.add_tokens(_added(plain, special=False))
    tok.padding_side = "left"
    return tok


def _backend_tokenizer(style: str, regex: str | None, *, head: Sequence[str] = (), tail: Sequence[str] = (),
                       bos: str | None, eos: str, pad: str, unk: str | None = None, add_bos: bool = False,
                       named: dict[str, str] | None = None):
    """A ``TokenizersBackend`` (loaded back from tokenizer.json as it is): byte-level BPE split by
    ``regex`` (Llama-3, SmolLM2, Tekken, Llama-4) or ``▁``-style BPE (Mistral-7B, no prefix space)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import TokenizersBackend

    vocab, merges = _vocab(style, head=head, tail=tail)
    if style == "bytelevel":
        tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=None, byte_fallback=False))
        tk.normalizer = normalizers.NFC()
        tk.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        tk.decoder = decoders.ByteLevel()
    else:
        tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=unk, fuse_unk=True, byte_fallback=False))
        tk.normalizer = normalizers.Replace(" ", METASPACE)
        tk.pre_tokenizer = pre_tokenizers.Split(Regex(METASPACE_REGEX), behavior="isolated", invert=False)
        tk.decoder = decoders.Sequence([decoders.Replace(METASPACE, " "), decoders.Fuse()])
    tk.add_special_tokens(_added([*head, *tail]))
    kw = {"extra_special_tokens": dict(named)} if named else {}
    tok = TokenizersBackend(tokenizer_object=tk, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk,
                            add_bos_token=add_bos, add_eos_token=False, clean_up_tokenization_spaces=False,
                            model_max_length=4096, **kw)
    tok.padding_side = "left"
    return tok


def _gemma_tokenizer(head: Sequence[str], named: dict[str, str]):
    """GemmaTokenizer (it rebuilds Gemma's pipeline from vocab + merges on load: spaces as ``▁``,
    no pre-tokenizer split, byte fallback); BOS added, as Gemma's tokenizer does."""
    from transformers import GemmaTokenizer

    vocab, merges = _vocab("metaspace", head=head)
    tok = GemmaTokenizer(vocab=vocab, merges=merges, unk_token="<unk>", bos_token="<bos>", eos_token="<eos>",
                         pad_token="<pad>", mask_token="<mask>", add_bos_token=True, add_eos_token=False,
                         extra_special_tokens=dict(named), clean_up_tokenization_spaces=False, model_max_length=4096)
    tok.add_tokens(_added(head), special_tokens=True)
    tok.padding_side = "left"
    return tok


# -- chat templates ------------------------------------------------------------------------------

def _trl_template(name: str) -> str:
    """The official template as TRL ships it (TRL compares chat templates against these copies)."""
    from importlib.resources import files

    return (files("trl") / "chat_templates" / f"{name}.jinja").read_text()


# the project's own templates for the families whose checkpoints TRL ships no template for
LLAVA_ONEVISION_TEMPLATE = chat_templates.LLAVA_ONEVISION
INTERNVL_TEMPLATE = chat_templates.INTERNVL
MISTRAL3_TEMPLATE = chat_templates.MISTRAL3


# -- shared finishing ----------------------------------------------------------------------------

def _generation(model, tokenizer, eos: Sequence[str], pad: str, bos: str | None = None) -> None:
    gen = model.generation_config
    gen.eos_token_id = [tokenizer.convert_tokens_to_ids(t) for t in eos]
    gen.pad_token_id = tokenizer.convert_tokens_to_ids(pad)
    if bos is not None:
        gen.bos_token_id = tokenizer.convert_tokens_to_ids(bos)
    gen.do_sample = False


def _save(model, processor, out_dir: str | Path, family: str, seed: int) -> Path:
    """tiny_vlm's finishing steps: spread lm_head, set the tiny reasoning budget, save."""
    import torch

    model.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        model.get_output_embeddings().weight.normal_(0.0, 0.5)
    model.generation_config.max_new_tokens = TINY_BUDGET
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    (out / "prefbench_tiny.json").write_text(json.dumps(
        {"builder": "prefbench.testing.tiny_families", "family": family, "seed": seed}, indent=2) + "\n")
    return out


def _new(model_cls, config, seed: int):
    import torch

    torch.manual_seed(seed)
    return model_cls(config)


def _ids(tok, *tokens: str) -> dict[str, int]:
    return {t: tok.convert_tokens_to_ids(t) for t in tokens}


# -- families ------------------------------------------------------------------------------------

#: Qwen3's added (not special) tokens after Qwen2.5's special tokens
QWEN3_PLAIN_TOKENS = ("<tool_response>", "</tool_response>", "<think>", "</think>")


def build_qwen3_vl(out_dir: str | Path, seed: int = SEED) -> Path:
    """Qwen3-VL (``Qwen3VLForConditionalGeneration``, ``Qwen3VLProcessor``): patch 16, merge 2,
    images at most 128 x 128 pixels (16 visual tokens), deepstack features from both ViT layers."""
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tok = _qwen2_tokenizer(QWEN_SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>", plain=QWEN3_PLAIN_TOKENS)
    ids = _ids(tok, "<|endoftext|>", "<|im_end|>", "<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
               "<|vision_end|>")
    text = {k: v for k, v in TEXT.items() if k != "tie_word_embeddings"}
    config = Qwen3VLConfig(
        text_config={**text, "vocab_size": len(tok), "rms_norm_eps": 1e-6,
                     "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"],
                     "rope_parameters": {"rope_type": "default", "rope_theta": 5_000_000.0,
                                         "mrope_section": [4, 6, 6], "mrope_interleaved": True}},
        vision_config=dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=64,
                           patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=64,
                           deepstack_visual_indexes=[0, 1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    model = _new(Qwen3VLForConditionalGeneration, config, seed)
    _generation(model, tok, ["<|im_end|>", "<|endoftext|>"], "<|endoftext|>")
    size = {"shortest_edge": 32 * 32, "longest_edge": 128 * 128}
    kw = dict(patch_size=16, merge_size=2, temporal_patch_size=2, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Qwen3VLProcessor(image_processor=Qwen2VLImageProcessor(size=size, **kw), tokenizer=tok,
                                 video_processor=Qwen3VLVideoProcessor(size=size, **kw),
                                 chat_template=_trl_template("qwen3_vl"))
    return _save(model, processor, out_dir, "qwen3_vl", seed)


GEMMA3_HEAD_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>",
                      "<start_of_image>", "<end_of_image>", "<image_soft_token>")


def build_gemma3(out_dir: str | Path, seed: int = SEED) -> Path:
    """Gemma 3 (``Gemma3ForConditionalGeneration``, ``Gemma3Processor``): SigLIP at a fixed 32 x 32
    (4 x 4 patches of 8, pooled to 4 image tokens), one sliding and one full attention layer."""
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
    )

    named = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
    tok = _gemma_tokenizer(GEMMA3_HEAD_TOKENS, named)
    ids = _ids(tok, *GEMMA3_HEAD_TOKENS)
    config = Gemma3Config(
        text_config={**TEXT, "vocab_size": len(tok), "query_pre_attn_scalar": 32, "sliding_window": 512,
                     "layer_types": ["sliding_attention", "full_attention"], "rms_norm_eps": 1e-6,
                     "pad_token_id": ids["<pad>"], "eos_token_id": ids["<eos>"], "bos_token_id": ids["<bos>"]},
        vision_config={"model_type": "siglip_vision_model", **VIT, "image_size": 32, "patch_size": 8,
                       "vision_use_head": False},
        mm_tokens_per_image=4, boi_token_index=ids["<start_of_image>"], eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"], tie_word_embeddings=False,
    )
    model = _new(Gemma3ForConditionalGeneration, config, seed)
    _generation(model, tok, ["<eos>", "<end_of_turn>"], "<pad>", bos="<bos>")
    image_processor = Gemma3ImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                                           do_pan_and_scan=False)
    processor = Gemma3Processor(image_processor=image_processor, tokenizer=tok, image_seq_length=4,
                                chat_template=_trl_template("gemma3"))
    return _save(model, processor, out_dir, "gemma3", seed)


#: Idefics3 / SmolVLM image tokens (the row/column tags of split images and the global-image tag)
IDEFICS3_IMAGE_TOKENS = ("<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>",
                         *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)))
LLAMA3_TOKENS = ("<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|start_header_id|>",
                 "<|end_header_id|>", "<|eot_id|>")


def _idefics3_like(family: str, out_dir: str | Path, seed: int) -> Path:
    """Idefics3 and SmolVLM: SigLIP-style ViT on 32 x 32 tiles (patch 8, pixel shuffle 2 -> 4
    tokens per tile); images resized to a longest edge of 64 and split into up to 2 x 2 tiles plus
    the global image."""
    import transformers as T

    smol = family == "smolvlm"
    if smol:  # SmolLM2's tokenizer: its special tokens first, digits split one by one
        tok = _backend_tokenizer("bytelevel", r"\p{N}|" + GPT2_REGEX.replace(r" ?\p{N}+|", ""),
                                 head=("<|endoftext|>", "<|im_start|>", "<|im_end|>"), tail=IDEFICS3_IMAGE_TOKENS,
                                 bos="<|im_start|>", eos="<end_of_utterance>", pad="<|im_end|>", unk="<|endoftext|>",
                                 named={"fake_image_token": "<fake_token_around_image>", "image_token": "<image>",
                                        "end_of_utterance_token": "<end_of_utterance>",
                                        "global_image_token": "<global-img>"})
        eos, pad, bos = ["<end_of_utterance>", "<|im_end|>"], "<|im_end|>", "<|im_start|>"
        names = ("SmolVLMConfig", "SmolVLMForConditionalGeneration", "SmolVLMImageProcessor", "SmolVLMProcessor")
        template = _trl_template("smolvlm")
    else:  # Llama-3's tokenizer: specials after the vocabulary, BOS added
        tok = _backend_tokenizer("bytelevel", LLAMA3_REGEX, tail=(*LLAMA3_TOKENS, *IDEFICS3_IMAGE_TOKENS),
                                 bos="<|begin_of_text|>", eos="<|end_of_text|>", pad="<|reserved_special_token_0|>",
                                 add_bos=True)
        eos, pad, bos = ["<end_of_utterance>", "<|end_of_text|>"], "<|reserved_special_token_0|>", "<|begin_of_text|>"
        names = ("Idefics3Config", "Idefics3ForConditionalGeneration", "Idefics3ImageProcessor", "Idefics3Processor")
        template = _trl_template("idefics3")
    config_cls, model_cls, image_cls, processor_cls = (getattr(T, n) for n in names)
    ids = _ids(tok, bos, "<image>", *eos)
    config = config_cls(
        text_config={"model_type": "llama", **TEXT, "vocab_size": len(tok), "rms_norm_eps": 1e-5,
                     "bos_token_id": ids[bos], "eos_token_id": ids[eos[0]], "pad_token_id": tok.pad_token_id},
        vision_config={**VIT, "image_size": 32, "patch_size": 8},
        scale_factor=2, image_token_id=ids["<image>"], tie_word_embeddings=False,
    )
    model = _new(model_cls, config, seed)
    _generation(model, tok, eos, pad, bos=bos)
    kw = dict(size={"longest_edge": 64}, max_image_size={"longest_edge": 32}, do_image_splitting=True,
              image_mean=[0.5] * 3, image_std=[0.5] * 3)
    if smol:
        video = T.SmolVLMVideoProcessor(size={"longest_edge": 32}, max_image_size={"longest_edge": 32},
                                        image_mean=[0.5] * 3, image_std=[0.5] * 3)
        processor = processor_cls(image_processor=image_cls(**kw), tokenizer=tok, video_processor=video,
                                  image_seq_len=4, chat_template=template)
    else:
        processor = processor_cls(image_processor=image_cls(**kw), tokenizer=tok, image_seq_len=4,
                                  chat_template=template)
    return _save(model, processor, out_dir, family, seed)


def build_idefics3(out_dir: str | Path, seed: int = SEED) -> Path:
    """Idefics3 (``Idefics3ForConditionalGeneration``, ``Idefics3Processor``, Llama-3 tokenizer)."""
    return _idefics3_like("idefics3", out_dir, seed)


def build_smolvlm(out_dir: str | Path, seed: int = SEED) -> Path:
    """SmolVLM (``SmolVLMForConditionalGeneration``, ``SmolVLMProcessor``, SmolLM2 tokenizer); the
    processor needs the ``num2words`` package, to build and to load."""
    return _idefics3_like("smolvlm", out_dir, seed)


QWEN2_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
#: anyres grid of the tiny LLaVA models: 32-pixel tiles, up to 3 a side (LLaVA-OneVision: 384)
TINY_PINPOINTS = [[32 * h, 32 * w] for h in range(1, 4) for w in range(1, 4)]


def build_llava_onevision(out_dir: str | Path, seed: int = SEED) -> Path:
    """LLaVA-OneVision (``LlavaOnevisionForConditionalGeneration``): SigLIP 32 x 32 base image (16
    tokens) plus anyres tiles of 32 pixels, Qwen2 text model."""
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    tok = _qwen2_tokenizer((*QWEN2_TOKENS, "<image>", "<video>"), eos="<|im_end|>", pad="<|endoftext|>")
    ids = _ids(tok, "<|endoftext|>", "<|im_end|>", "<image>", "<video>")
    config = LlavaOnevisionConfig(
        text_config={"model_type": "qwen2", **TEXT, "vocab_size": len(tok), "rms_norm_eps": 1e-6,
                     "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"]},
        vision_config={"model_type": "siglip_vision_model", **VIT, "image_size": 32, "patch_size": 8,
                       "vision_use_head": False},
        image_token_index=ids["<image>"], video_token_index=ids["<video>"], vision_feature_select_strategy="full",
        vision_feature_layer=-1, image_grid_pinpoints=TINY_PINPOINTS, vision_aspect_ratio="anyres_max_9",
        tie_word_embeddings=False,
    )
    model = _new(LlavaOnevisionForConditionalGeneration, config, seed)
    _generation(model, tok, ["<|im_end|>", "<|endoftext|>"], "<|endoftext|>")
    kw = dict(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(image_grid_pinpoints=TINY_PINPOINTS, **kw), tokenizer=tok,
        video_processor=LlavaOnevisionVideoProcessor(**kw), num_image_tokens=16, vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9", chat_template=LLAVA_ONEVISION_TEMPLATE)
    return _save(model, processor, out_dir, "llava_onevision", seed)


#: llava-v1.6-mistral's anyres grid, scaled from 336 to 32 pixels
LLAVA_NEXT_PINPOINTS = [[32, 64], [64, 32], [64, 64], [96, 32], [32, 96]]


def build_llava_next(out_dir: str | Path, seed: int = SEED) -> Path:
    """LLaVA-NeXT (``LlavaNextForConditionalGeneration``), as llava-v1.6-mistral-7b-hf: CLIP ViT on
    32 x 32 crops (patch 8, CLS dropped), Mistral text model, ``[INST] ... [/INST]`` template."""
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    tok = _backend_tokenizer("metaspace", None, head=("<unk>", "<s>", "</s>"), tail=("<image>",), bos="<s>",
                             eos="</s>", pad="<unk>", unk="<unk>", add_bos=True)
    ids = _ids(tok, "<s>", "</s>", "<unk>", "<image>")
    config = LlavaNextConfig(
        text_config={"model_type": "mistral", **TEXT, "vocab_size": len(tok), "rms_norm_eps": 1e-5,
                     "sliding_window": None, "bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"],
                     "pad_token_id": ids["<unk>"]},
        vision_config={"model_type": "clip_vision_model", **VIT, "image_size": 32, "patch_size": 8,
                       "projection_dim": 64},
        image_token_index=ids["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-2,
        image_grid_pinpoints=LLAVA_NEXT_PINPOINTS, image_seq_length=16, tie_word_embeddings=False,
    )
    model = _new(LlavaNextForConditionalGeneration, config, seed)
    _generation(model, tok, ["</s>"], "<unk>", bos="<s>")
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                              image_grid_pinpoints=LLAVA_NEXT_PINPOINTS)
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tok, patch_size=8,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=_trl_template("llava_next"))
    return _save(model, processor, out_dir, "llava_next", seed)


INTERNVL_TOKENS = ("<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>",
                   "<video>")


def build_internvl(out_dir: str | Path, seed: int = SEED) -> Path:
    """InternVL3-hf (``InternVLForConditionalGeneration``, ``InternVLProcessor``): InternViT on
    32 x 32 tiles (patch 8, pixel shuffle 0.5 -> 4 tokens per tile), up to 6 tiles plus a thumbnail
    per image, Qwen2 text model."""
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
    )

    named = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
             "video_token": "<video>"}
    tok = _qwen2_tokenizer((*QWEN_SPECIAL_TOKENS, *INTERNVL_TOKENS), eos="<|im_end|>", pad="<|endoftext|>",
                           named=named)
    ids = _ids(tok, "<|endoftext|>", "<|im_end|>", "<IMG_CONTEXT>")
    config = InternVLConfig(
        text_config={"model_type": "qwen2", **TEXT, "vocab_size": len(tok), "rms_norm_eps": 1e-6,
                     "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"]},
        vision_config={**VIT, "image_size": [32, 32], "patch_size": [8, 8]},
        image_token_id=ids["<IMG_CONTEXT>"], image_seq_length=4, downsample_ratio=0.5, vision_feature_layer=-1,
        vision_feature_select_strategy="default", tie_word_embeddings=False,
    )
    model = _new(InternVLForConditionalGeneration, config, seed)
    _generation(model, tok, ["<|im_end|>", "<|endoftext|>"], "<|endoftext|>")
    image_processor = GotOcr2ImageProcessor(size={"height": 32, "width": 32}, crop_to_patches=True, min_patches=1,
                                            max_patches=6)
    processor = InternVLProcessor(image_processor=image_processor, tokenizer=tok,
                                  video_processor=InternVLVideoProcessor(size={"height": 32, "width": 32}),
                                  image_seq_length=4, chat_template=INTERNVL_TEMPLATE)
    return _save(model, processor, out_dir, "internvl", seed)


#: Tekken's first 20 control tokens, in their official order ([IMG] = 10, [IMG_BREAK] = 12, [IMG_END] = 13)
MISTRAL3_HEAD_TOKENS = ("<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                        "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
                        "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
                        "[TOOL_CONTENT]")


def build_mistral3(out_dir: str | Path, seed: int = SEED) -> Path:
    """Mistral-Small-3.1 (``Mistral3ForConditionalGeneration``, ``PixtralProcessor``): Pixtral ViT
    with patch 8 and a 2 x 2 patch merger (one token per 16 x 16 pixels), images at most 64 pixels
    on their longest edge (at most 4 x 4 tokens plus row breaks)."""
    from transformers import (
        Mistral3Config,
        Mistral3ForConditionalGeneration,
        PixtralImageProcessor,
        PixtralProcessor,
    )

    tok = _backend_tokenizer("bytelevel", TEKKEN_REGEX, head=MISTRAL3_HEAD_TOKENS, bos="<s>", eos="</s>", pad="<pad>",
                             unk="<unk>", add_bos=True)
    ids = _ids(tok, "<s>", "</s>", "<pad>", "[IMG]")
    config = Mistral3Config(
        text_config={"model_type": "mistral", **TEXT, "vocab_size": len(tok), "rms_norm_eps": 1e-5,
                     "sliding_window": None, "bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"],
                     "pad_token_id": ids["<pad>"]},
        vision_config={"model_type": "pixtral", **VIT, "head_dim": 32, "image_size": 64, "patch_size": 8},
        image_token_index=ids["[IMG]"], spatial_merge_size=2, vision_feature_layer=-1,
        multimodal_projector_bias=False, tie_word_embeddings=False,
    )
    model = _new(Mistral3ForConditionalGeneration, config, seed)
    _generation(model, tok, ["</s>"], "<pad>", bos="<s>")
    image_processor = PixtralImageProcessor(size={"longest_edge": 64}, patch_size={"height": 8, "width": 8})
    processor = PixtralProcessor(image_processor=image_processor, tokenizer=tok, patch_size=8, spatial_merge_size=2,
                                 chat_template=MISTRAL3_TEMPLATE)
    return _save(model, processor, out_dir, "mistral3", seed)


LLAMA4_TOKENS = ("<|begin_of_text|>", "<|end_of_text|>", "<|header_start|>", "<|header_end|>", "<|eom|>", "<|eot|>",
                 "<|python_start|>", "<|python_end|>", "<|finetune_right_pad|>", "<|image_start|>", "<|image_end|>",
                 "<|image|>", "<|patch|>", "<|tile_x_separator|>", "<|tile_y_separator|>")


def build_llama4(out_dir: str | Path, seed: int = SEED) -> Path:
    """Llama 4 (``Llama4ForConditionalGeneration``, ``Llama4Processor``): 28 x 28 tiles of patch 14
    (pixel shuffle 0.5 -> 1 token per tile), at most 4 tiles plus the global view; MoE text model
    with 2 experts. It loads, but in transformers 5.24 every forward fails inside
    ``Llama4ForConditionalGeneration.forward`` (``'MoeCausalLMOutputWithPast' object has no
    attribute 'image_outputs'``); the processor returns bfloat16 ``pixel_values``."""
    from transformers import (
        Llama4Config,
        Llama4ForConditionalGeneration,
        Llama4ImageProcessor,
        Llama4Processor,
    )

    tok = _backend_tokenizer("bytelevel", LLAMA3_REGEX, tail=LLAMA4_TOKENS, bos="<|begin_of_text|>",
                             eos="<|eot|>", pad="<|finetune_right_pad|>", add_bos=True)
    ids = _ids(tok, *LLAMA4_TOKENS)
    config = Llama4Config(
        text_config={**TEXT, "vocab_size": len(tok), "intermediate_size_mlp": 128, "num_local_experts": 2,
                     "num_experts_per_tok": 1, "interleave_moe_layer_step": 2, "attention_chunk_size": 512,
                     "no_rope_layer_interval": 2, "rms_norm_eps": 1e-5, "bos_token_id": ids["<|begin_of_text|>"],
                     "eos_token_id": ids["<|eot|>"], "pad_token_id": ids["<|finetune_right_pad|>"]},
        # the pixel-shuffle MLP takes hidden / ratio**2 = 256 features: intermediate_size must be that
        vision_config={**VIT, "intermediate_size": 256, "image_size": 28, "patch_size": 14, "vision_output_dim": 64,
                       "pixel_shuffle_ratio": 0.5, "projector_input_dim": 64, "projector_output_dim": 64},
        boi_token_index=ids["<|image_start|>"], eoi_token_index=ids["<|image_end|>"],
        image_token_index=ids["<|patch|>"], tie_word_embeddings=False,
    )
    model = _new(Llama4ForConditionalGeneration, config, seed)
    _generation(model, tok, ["<|eot|>", "<|eom|>", "<|end_of_text|>"], "<|finetune_right_pad|>",
                bos="<|begin_of_text|>")
    image_processor = Llama4ImageProcessor(size={"height": 28, "width": 28}, max_patches=4, resize_to_max_canvas=False)
    processor = Llama4Processor(image_processor=image_processor, tokenizer=tok, patch_size=14,
                                pixel_shuffle_ratio=0.5)
    return _save(model, processor, out_dir, "llama4", seed)


BUILDERS: dict[str, Callable[..., Path]] = {
    "qwen3_vl": build_qwen3_vl, "gemma3": build_gemma3, "idefics3": build_idefics3, "smolvlm": build_smolvlm,
    "llava_onevision": build_llava_onevision, "llava_next": build_llava_next, "internvl": build_internvl,
    "mistral3": build_mistral3, "llama4": build_llama4,
}


def build_tiny_family(family: str, out_dir: str | Path, seed: int = SEED) -> Path:
    """Write the tiny checkpoint of ``family`` (one of :data:`FAMILIES`) to ``out_dir``."""
    if family not in BUILDERS:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    return BUILDERS[family](out_dir, seed=seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefbench.testing.tiny_families",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=(*FAMILIES, "all"))
    parser.add_argument("out_dir", help="folder to write the checkpoint into (with 'all': one sub-folder per family)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    families = FAMILIES if args.family == "all" else (args.family,)
    for family in families:
        out = Path(args.out_dir) / family if args.family == "all" else Path(args.out_dir)
        path = build_tiny_family(family, out, seed=args.seed)
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        print(f"wrote tiny {family} to {path} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
