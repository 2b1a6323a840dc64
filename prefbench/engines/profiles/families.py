"""The built-in model profiles (one per family; see :mod:`prefbench.engines.profiles`)."""

from __future__ import annotations

import functools

from prefbench.engines.profiles import ModelProfile

QWEN_END = ("<|im_end|>", "<|endoftext|>")


def _wrap_image_features(engine, base, split_fn) -> bool:
    """Wrap ``base.get_image_features`` so that the vision tower runs on distinct images only.

    generate() calls it once before prefill with every image slot of the batch; the engine sets
    ``engine.image_slot_keys`` (one key per slot, in the processor's order) for the call.
    ``split_fn(keys, args, kwargs, orig)`` returns the output with features copied to every slot,
    or None to fall back to encoding all slots."""
    orig = getattr(base, "get_image_features", None)
    if orig is None:
        return False
    if getattr(orig, "_prefbench_shared", False):
        return True

    @functools.wraps(orig)
    def get_image_features(*args, **kwargs):
        keys = engine.image_slot_keys
        first: dict[str, int] = {}
        for slot, key in enumerate(keys or ()):
            first.setdefault(key, slot)
        if keys and len(first) < len(keys):
            out = split_fn(keys, first, args, kwargs, orig)
            if out is not None:
                engine.image_stats["encoded"] += len(first)
                engine.image_stats["shared"] += len(keys) - len(first)
                return out
        engine.image_stats["encoded"] += len(keys or ())
        return orig(*args, **kwargs)

    get_image_features._prefbench_shared = True
    base.get_image_features = get_image_features
    return True


def _qwen_split(keys, first, args, kwargs, orig):
    """Qwen-VL: patches of all images concatenated, split by ``image_grid_thw``; the output's
    ``pooler_output`` is one feature tensor per image (Qwen3-VL also has per-layer deepstack
    features, shared the same way)."""
    import torch

    pixel_values = args[0] if args else kwargs.pop("pixel_values")
    grid = args[1] if len(args) > 1 else kwargs.pop("image_grid_thw", None)
    if grid is None or grid.shape[0] != len(keys):
        return None
    sizes = grid.prod(-1).tolist()
    starts = [0]
    for n in sizes:
        starts.append(starts[-1] + n)
    uniq = list(first.values())
    patches = torch.cat([pixel_values[starts[i]:starts[i + 1]] for i in uniq])
    out = orig(patches, grid[uniq], **kwargs)

    def spread(per_image):
        feats = dict(zip(uniq, per_image))
        return tuple(feats[first[key]] for key in keys)

    out.pooler_output = spread(out.pooler_output)
    deep = getattr(out, "deepstack_features", None)
    if deep is not None:
        out.deepstack_features = [spread(layer) for layer in deep]
    return out


def _qwen_sharing(engine, model) -> bool:
    return _wrap_image_features(engine, getattr(model, "model", None), _qwen_split)


QWEN2_VL = ModelProfile(
    "Qwen2-VL / Qwen2.5-VL", ("qwen2_vl", "qwen2_5_vl"), end_tokens=QWEN_END,
    image_kwargs=lambda n: {"max_pixels": n}, batching="concat", share_images=_qwen_sharing)

QWEN3_VL = ModelProfile(
    "Qwen3-VL", ("qwen3_vl", "qwen3_vl_moe"), end_tokens=QWEN_END,
    image_kwargs=lambda n: {"max_pixels": n}, batching="concat", share_images=_qwen_sharing)


def _gemma_split(keys, first, args, kwargs, orig):
    """Gemma 3: one ``pixel_values`` row per image (a fixed 896 x 896 on the real model), and a
    ``pooler_output`` tensor of (images, tokens per image, hidden)."""
    pixel_values = args[0] if args else kwargs.pop("pixel_values")
    if pixel_values.shape[0] != len(keys):
        return None
    uniq = list(first.values())
    out = orig(pixel_values[uniq], *args[1:], **kwargs)
    where = {slot: n for n, slot in enumerate(uniq)}
    out.pooler_output = out.pooler_output[[where[first[key]] for key in keys]]
    return out


def _gemma_sharing(engine, model) -> bool:
    return _wrap_image_features(engine, getattr(model, "model", None), _gemma_split)


GEMMA3 = ModelProfile(
    "Gemma 3", ("gemma3",), end_tokens=("<end_of_turn>", "<eos>"), image_kwargs=None, batching="concat",
    share_images=_gemma_sharing,
    notes="the processor resizes every image to the vision tower's fixed size (896 x 896 on the real "
          "checkpoints): there is no pixel budget to set")

#: Idefics3 / SmolVLM keep the language model under ``model.text_model``
TEXT_MODEL_LORA = r".*text_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"

IDEFICS3 = ModelProfile(
    "Idefics3", ("idefics3",), end_tokens=("<end_of_utterance>", "<|end_of_text|>"),
    image_kwargs=lambda n: {"size": {"longest_edge": max(1, int(n ** 0.5))}}, lora_targets=TEXT_MODEL_LORA,
    notes="max_pixels becomes the processor's longest edge (sqrt of the budget); images are split into "
          "tiles of the vision tower's size, so an image costs a whole number of tiles")

SMOLVLM = ModelProfile(
    "SmolVLM", ("smolvlm",), end_tokens=("<end_of_utterance>", "<|im_end|>"),
    image_kwargs=lambda n: {"size": {"longest_edge": max(1, int(n ** 0.5))}}, lora_targets=TEXT_MODEL_LORA,
    requires=("num2words",),
    notes="as Idefics3; its processor imports num2words")

_LLAVA_SIZE = ("the resolution is set by image_grid_pinpoints, which the model's config must match too: "
               "there is no processor-only pixel budget")
LLAVA_ONEVISION = ModelProfile(
    "LLaVA-OneVision", ("llava_onevision",), end_tokens=("<|im_end|>", "<|endoftext|>"), image_kwargs=None,
    train_refuse="TRL's GRPOTrainer passes the processor's batch_num_images output on to its own log-prob "
                 "function, which does not accept it (TypeError inside TRL 1.16)",
    notes=_LLAVA_SIZE + "; its chat template puts a turn's images before its text")
LLAVA_NEXT = ModelProfile(
    "LLaVA-NeXT", ("llava_next",), end_tokens=("</s>",), image_kwargs=None,
    notes=_LLAVA_SIZE + "; its chat template puts a turn's images before its text")

INTERNVL = ModelProfile(
    "InternVL", ("internvl",), end_tokens=("<|im_end|>", "<|endoftext|>"), batching="concat",
    image_kwargs=lambda n: {"max_patches": max(1, n // (448 * 448))},
    notes="max_pixels becomes max_patches (448 x 448 tiles on the real checkpoints); image features "
          "are per tile, so they are not shared")


def _mistral_messages(messages):
    """Mistral 3's template inserts a default system prompt with today's date when there is
    none: the prompt (and the scores) would change from day to day. An explicit empty system
    turn keeps it fixed."""
    if messages and messages[0].get("role") == "system":
        return messages
    return [{"role": "system", "content": [{"type": "text", "text": ""}]}, *messages]


MISTRAL3 = ModelProfile(
    "Mistral 3 / Pixtral", ("mistral3",), end_tokens=("</s>",),
    image_kwargs=lambda n: {"size": {"longest_edge": max(1, int(n ** 0.5))}}, fix_messages=_mistral_messages,
    notes="max_pixels becomes the processor's longest edge; an empty system turn replaces the template's "
          "dated default")

LLAMA4 = ModelProfile(
    "Llama 4", ("llama4",), end_tokens=("<|eot|>", "<|eom|>", "<|end_of_text|>"),
    refuse="every forward pass fails inside transformers 5.24 itself ('MoeCausalLMOutputWithPast' object "
           "has no attribute 'image_outputs', Llama4ForConditionalGeneration.forward)")
