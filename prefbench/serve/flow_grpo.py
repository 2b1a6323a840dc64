"""Flow-GRPO's side of the reward server: :func:`flow_grpo_reward`, a reward function with
Flow-GRPO's signature that scores on a ``prefbench serve`` server, and :func:`batch_to_pil`,
the image batches it accepts (torch tensors, numpy arrays, lists).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from prefbench.api import ON_ERROR, ScoringError, _check_choice
from prefbench.errors import UsageError
from prefbench.serve.client import Client
from prefbench.serve.payloads import array_to_pil, is_array


def batch_to_pil(images: Any) -> list[Any]:
    """A Flow-GRPO image batch as PIL images: a torch tensor (B, C, H, W) of floats in [0, 1]
    (or uint8), a numpy array (B, H, W, C) uint8 (floats in [0, 1] are scaled), or a list of
    PIL images / arrays / paths / bytes (kept). Tensors convert as Flow-GRPO's own rewards do:
    ``(x * 255).round().clamp(0, 255)`` to uint8, NCHW -> NHWC; torch is never imported here."""
    if type(images).__module__.split(".")[0] == "torch":
        t = images.detach().cpu()
        if t.is_floating_point():
            t = (t.float() * 255).round().clamp(0, 255)
        array = t.byte().numpy()
        if array.ndim != 4 or array.shape[1] not in (1, 3, 4):
            raise UsageError(f"an image tensor must be (B, C, H, W) with C in 1, 3, 4; got shape {tuple(t.shape)}")
        return [array_to_pil(a) for a in array.transpose(0, 2, 3, 1)]
    if is_array(images):
        import numpy as np

        array = np.asarray(images)
        if array.ndim != 4:
            raise UsageError(f"an image array batch must be (B, H, W, C); got shape {array.shape}")
        return [array_to_pil(a) for a in array]
    return [array_to_pil(x) if is_array(x) else x for x in images]


def flow_grpo_reward(server: str | Client, *, token: str | None = None, mode: str | None = None,
                     group_by_prompt: bool = True, on_error: str = "raise", **client_options: Any
                     ) -> Callable[..., tuple[list[float], dict[str, Any]]]:
    """A reward function with Flow-GRPO's signature, ``fn(images, prompts, metadata) -> (scores,
    details)``, scoring on a ``prefbench serve`` server (``server``: its URL or a :class:`Client`).

    ``images``: see :func:`batch_to_pil`; ``prompts``: one per image. With ``group_by_prompt``
    (default) the images that share a prompt go to the scorer as one item, so a pairwise scorer
    compares a GRPO group's images with each other; a pointwise scorer gives the same scores
    either way. ``scores`` is a list of floats in the images' order; ``details`` holds
    ``statuses`` and ``errors`` per image. A failed image raises
    :class:`~prefbench.api.ScoringError` unless ``on_error="nan"``.

    In Flow-GRPO's ``flow_grpo/rewards.py``, one line switches the reward::

        score_fns[name] = flow_grpo_reward("http://127.0.0.1:8000")
    """

    _check_choice("on_error", on_error, ON_ERROR)
    client = server if isinstance(server, Client) else Client(server, token=token, **client_options)

    def reward(images, prompts, metadata=None):
        pil = batch_to_pil(images)
        prompts = [str(p) for p in prompts]
        if len(prompts) != len(pil):
            raise UsageError(f"{len(pil)} images but {len(prompts)} prompts: the reward needs one prompt per image")
        groups: dict[Any, list[int]] = {}
        for i, prompt in enumerate(prompts):
            groups.setdefault(prompt if group_by_prompt else i, []).append(i)
        order = list(groups.values())
        too_big = max(order, key=len)
        if group_by_prompt and len(too_big) > client.max_request_images:
            raise UsageError(f"{len(too_big)} images share the prompt {prompts[too_big[0]][:60]!r}, more than one "
                             f"request holds (max_request_images={client.max_request_images}, the server's "
                             "--max-images); raise both, or pass group_by_prompt=False for a pointwise scorer")
        scored = client.score_items([(prompts[ix[0]], [pil[i] for i in ix]) for ix in order], on_error="nan",
                                    mode=mode)
        scores: list[float] = [math.nan] * len(pil)
        statuses: list[str] = ["error"] * len(pil)
        errors: list[str | None] = [None] * len(pil)
        for ix, item in zip(order, scored):
            for k, i in enumerate(ix):
                scores[i] = math.nan if item.scores[k] is None else float(item.scores[k])
                statuses[i], errors[i] = item.statuses[k], item.errors[k]
        if on_error == "raise" and any(s != "ok" for s in statuses):
            bad = [i for i, s in enumerate(statuses) if s != "ok"]
            raise ScoringError(f"image {bad[0]}: {statuses[bad[0]]}: {errors[bad[0]]}"
                               + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
                               + "; pass on_error='nan' to get NaN rewards instead", scored)
        return scores, {"statuses": statuses, "errors": errors}

    reward.client = client  # type: ignore[attr-defined]
    return reward
