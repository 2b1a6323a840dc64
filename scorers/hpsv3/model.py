"""HPSv3's network on transformers 5 classes: Qwen2-VL plus a RankNet head read at ``<|Reward|>``.

What the official package (hpsv3 1.0.0 on transformers 4.45.2) computes, from its source:

* ``train.py:create_model_and_processor``: the base processor (padding right) gains the special
  token ``<|Reward|>``; ``Qwen2VLRewardModelBT`` (a ``Qwen2VLForConditionalGeneration``) is resized
  to ``len(tokenizer)``, so the checkpoint's embedding has the tokenizer's row count (not the base
  config's ``vocab_size``).
* ``model/qwen2vl_trainer.py:Qwen2VLRewardModelBT.forward``: token embeddings, the vision tower's
  merged patches scattered at the image tokens, then the decoder called directly
  (``self.model(inputs_embeds=..., position_ids=None)``): the decoder's own default positions, a
  plain ``arange`` on all three M-RoPE axes, not the image-aware ``get_rope_index`` positions that
  ``Qwen2VLForConditionalGeneration.forward`` computes. The head (Linear(hidden, 1024), ReLU,
  Dropout(0.05), Linear(1024, 16), ReLU, Linear(16, 2); float32) is read at the ``<|Reward|>``
  position: output 0 is mu, output 1 is log sigma (the trainer's loss takes ``exp``).
* ``inference.py``: ``load_state_dict(strict=True)`` of ``HPSv3.safetensors`` over the whole model,
  so the checkpoint holds every weight and the base model's weights are never needed here, only its
  config and processor files.

The checkpoint's names are transformers 4.45's (``model.*`` decoder, ``visual.*``, ``lm_head.*``,
``rm_head.*``); :func:`map_official_keys` renames them for transformers 5's ``Qwen2VLModel``
(``language_model.*``, ``visual.*``); ``lm_head`` is not used (the head reads hidden states).
"""

from __future__ import annotations

import re

#: the official ranknet head without ``rm_head_kwargs``: (index in the Sequential, in, out)
HEAD_WIDTHS = (1024, 16)

_RULES = [
    (r"^model\.", "language_model."),
    (r"^visual\.", "visual."),
]
UNUSED_PREFIXES = ("lm_head.",)


def map_official_keys(state_dict: dict) -> tuple[dict, dict, list[str]]:
    """Official HPSv3 keys -> (Qwen2VLModel keys, head keys without ``rm_head.``, ignored keys)."""
    body, head, ignored = {}, {}, []
    for key, value in state_dict.items():
        if key.startswith("rm_head."):
            head[key.removeprefix("rm_head.")] = value
            continue
        if key.startswith(UNUSED_PREFIXES):
            ignored.append(key)
            continue
        for pattern, repl in _RULES:
            new, n = re.subn(pattern, repl, key)
            if n:
                body[new] = value
                break
        else:
            ignored.append(key)
    return body, head, ignored


def official_keys(body: dict, head: dict, lm_head=None) -> dict:
    """The inverse (Qwen2VLModel + head -> official names); writes tiny checkpoints."""
    out = {}
    for key, value in body.items():
        if key.startswith("language_model."):
            out["model." + key.removeprefix("language_model.")] = value
        elif key.startswith("visual."):
            out[key] = value
        else:
            raise KeyError(f"no official name for {key}")
    if lm_head is not None:
        out["lm_head.weight"] = lm_head
    out.update({"rm_head." + k: v for k, v in head.items()})
    return out


def build_head(hidden_size: int, output_dim: int = 2):
    from torch import nn

    return nn.Sequential(nn.Linear(hidden_size, HEAD_WIDTHS[0]), nn.ReLU(), nn.Dropout(0.05),
                         nn.Linear(HEAD_WIDTHS[0], HEAD_WIDTHS[1]), nn.ReLU(), nn.Linear(HEAD_WIDTHS[1], output_dim))


def build_body(config, dtype=None, device: str | None = None):
    """An uninitialised ``Qwen2VLModel`` (vision tower + decoder) for ``config``; the checkpoint
    fills every weight."""
    import torch
    from transformers import Qwen2VLModel

    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older layout
        from transformers.modeling_utils import no_init_weights

    previous = torch.get_default_dtype()
    try:
        if dtype is not None:
            torch.set_default_dtype(dtype)
        with no_init_weights(), torch.device(device or "cpu"):
            body = Qwen2VLModel(config)
    finally:
        torch.set_default_dtype(previous)
    return body


class HPSv3Head:
    """The forward pass, as a callable over a loaded ``Qwen2VLModel`` and head."""

    def __init__(self, body, head, reward_token_id: int):
        self.body, self.head, self.reward_token_id = body, head, int(reward_token_id)

    def __call__(self, input_ids, attention_mask, pixel_values, image_grid_thw):
        """(mu, log sigma) per row, float32 ``[B, 2]``."""
        import torch

        body = self.body
        embeds = body.language_model.embed_tokens(input_ids)
        features = body.get_image_features(pixel_values, image_grid_thw).pooler_output
        features = torch.cat(list(features), dim=0).to(embeds.device, embeds.dtype)
        mask = (input_ids == body.config.image_token_id).unsqueeze(-1).expand_as(embeds)
        if int(mask[..., 0].sum()) != features.shape[0]:
            raise ValueError(f"{int(mask[..., 0].sum())} image tokens for {features.shape[0]} image features")
        embeds = embeds.masked_scatter(mask, features)
        # position_ids=None: the decoder's arange positions, as the official forward leaves them
        hidden = body.language_model(inputs_embeds=embeds, attention_mask=attention_mask,
                                     use_cache=False).last_hidden_state
        is_reward = input_ids == self.reward_token_id
        if not bool(is_reward.any(dim=1).all()):
            raise ValueError("a sequence without the <|Reward|> token")
        # the last one: the suffix follows the user's prompt, which could hold the token's text too
        positions = input_ids.shape[1] - 1 - is_reward.flip(1).int().argmax(dim=1)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        return self.head(hidden[rows, positions].float())
