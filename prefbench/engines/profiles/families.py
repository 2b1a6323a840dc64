"""The built-in model profiles (one per family; see :mod:`prefbench.engines.profiles`)."""

from __future__ import annotations

import functools

from prefbench.engines.profiles import ModelProfile, register

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


register(ModelProfile(
    "Qwen2-VL / Qwen2.5-VL", ("qwen2_vl", "qwen2_5_vl"), end_tokens=QWEN_END,
    image_kwargs=lambda n: {"max_pixels": n}, batching="concat", share_images=_qwen_sharing))

register(ModelProfile(
    "Qwen3-VL", ("qwen3_vl", "qwen3_vl_moe"), end_tokens=QWEN_END,
    image_kwargs=lambda n: {"size": {"longest_edge": n, "shortest_edge": min(n, 32 * 32)}},
    batching="concat", share_images=_qwen_sharing))
