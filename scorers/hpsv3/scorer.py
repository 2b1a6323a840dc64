"""``hpsv3``: HPSv3 (MizzenAI, ICCV 2025), Qwen2-VL-7B with a RankNet head; score = mu, sigma typed.

Files: ``HPSv3.safetensors`` (the official checkpoint, transformers 4.45 key names, every weight)
from a file, a folder holding it, or the hub repo ``MizzenAI/HPSv3`` (default); the base model's
``config.json`` and processor files (tokenizer, chat template, ``preprocessor_config.json``) from
``base`` (default: the model folder when it has ``config.json``, else ``Qwen/Qwen2-VL-7B-Instruct``;
its weights are not read). The prompt text comes from the official wheel at a pinned sha256
(:mod:`.prompt`).

Per image, as ``HPSv3RewardInferencer.prepare_batch`` / ``reward`` do: RGB, Qwen's smart resize
to a fixed budget (``max_pixels``, default 256 x 28 x 28, used as min and max, bicubic on the PIL
image), one user turn ``[image, instruction(prompt) + suffix]`` rendered by the base's chat
template with the generation prompt, right padding; the head's two outputs at ``<|Reward|>`` are
mu (the score) and log sigma (``sigma = exp``, typed on the result). Images of all the batch's
prompts go through the model together, ``image_batch`` at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefbench.scorers.base import ImageResult, Scorer, Task
from prefbench.scorers.hpsv3.prompt import REWARD_TOKEN, load_prompt

CHECKPOINT = "HPSv3.safetensors"
DEFAULT_MODEL = "MizzenAI/HPSv3"
DEFAULT_BASE = "Qwen/Qwen2-VL-7B-Instruct"
#: hpsv3/inference.py prepare_batch: min_pixels = max_pixels = 256 * 28 * 28
PIXELS = 256 * 28 * 28
DTYPES = ("auto", "float32", "float16", "bfloat16")
#: what HPSv3 reads of its base model (Qwen/Qwen2-VL-7B-Instruct's file names)
BASE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
              "preprocessor_config.json", "chat_template.json")


def resize_for_hpsv3(image, pixels: int = PIXELS, factor: int = 28):
    """RGB, then Qwen's smart resize with ``pixels`` as both bounds, bicubic on the PIL image."""
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    image = image.convert("RGB")
    height, width = smart_resize(image.height, image.width, factor=factor, min_pixels=pixels, max_pixels=pixels)
    return image.resize((width, height), Image.BICUBIC)


class HPSv3Scorer(Scorer):
    """HPSv3: Qwen2-VL + RankNet head at <|Reward|>; score = mu, sigma = exp(second output)."""

    name = "hpsv3"
    extra = "vlm"
    batch_size = 16
    gives_sigma = True

    def __init__(self, *, model: str | None = None, base: str | None = None, prompt_file: str | None = None,
                 device: str = "auto", dtype: str = "auto", image_batch: int = 8, max_pixels: int = PIXELS):
        """``model``: HPSv3.safetensors, a folder holding it, or a hub repo (default MizzenAI/HPSv3);
        ``base``: the base model's config + processor (folder or hub id; default the model folder if it
        has config.json, else Qwen/Qwen2-VL-7B-Instruct); ``prompt_file``: the hpsv3 wheel or a Python
        file with its two prompt literals instead of the pinned download; ``dtype``: auto = bfloat16
        on CUDA (as the official config), float32 on CPU; ``image_batch``: images per forward pass;
        ``max_pixels``: the fixed pixel budget (min = max; official 200704)."""
        super().__init__(model=model or DEFAULT_MODEL)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if int(image_batch) < 1:
            raise ValueError("image_batch must be >= 1")
        if int(max_pixels) < 28 * 28:
            raise ValueError("max_pixels must be at least 784 (one 28 x 28 patch group)")
        self.base = base
        self.prompt_file = prompt_file
        self.device = str(device)
        self.dtype = dtype
        self.image_batch = int(image_batch)
        self.max_pixels = int(max_pixels)
        self._prompt = None
        self._net = None

    # -- identity -------------------------------------------------------------------------
    def _base_source(self) -> str:
        if self.base:
            return self.base
        local = Path(self.model).expanduser()
        folder = local if local.is_dir() else local.parent
        return str(folder) if local.exists() and (folder / "config.json").is_file() else DEFAULT_BASE

    def prompt(self):
        if self._prompt is None:
            self._prompt = load_prompt(self.prompt_file)
        return self._prompt

    def model_info(self) -> dict[str, Any]:
        return {"id": self.model, "revision": None, "file": CHECKPOINT, "base": self._base_source()}

    def prompt_template_hash(self) -> str | None:
        return self.prompt().record["text_sha256"]

    def summary(self) -> dict[str, Any]:
        return {"prompt_source": self.prompt().record}

    # -- lifecycle ------------------------------------------------------------------------
    def setup(self) -> None:
        if self._net is not None:
            return
        import torch
        from transformers import AutoConfig, AutoProcessor

        from prefbench.scorers.encoders._common import pick_device
        from prefbench.scorers.hpsv3.model import HPSv3Head, build_body, build_head, map_official_keys
        from prefbench.weights import WeightsError, from_pretrained, hub_file, load_state_dict

        self.prompt()
        device = pick_device(self.device)
        dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(
            self.dtype, torch.bfloat16 if device.startswith("cuda") else torch.float32)
        checkpoint = hub_file(self.model, CHECKPOINT, "hpsv3 checkpoint")
        base = self._base_source()
        try:
            processor = from_pretrained(AutoProcessor.from_pretrained, base, "hpsv3 base processor",
                                        padding_side="right")
            config = from_pretrained(AutoConfig.from_pretrained, base, "hpsv3 base config")
        except WeightsError as exc:
            raise WeightsError(f"{str(exc).split(';')[0]}. HPSv3 reads only the base's config and processor files, "
                               "not its weights: "
                               f"hf download {base} {' '.join(BASE_FILES)} --local-dir DIR, then -S base=DIR "
                               "(or put them beside HPSv3.safetensors)") from None
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "right"
        tokenizer.add_special_tokens({"additional_special_tokens": [REWARD_TOKEN]})
        reward_id = tokenizer.convert_tokens_to_ids(REWARD_TOKEN)
        if getattr(config, "model_type", None) != "qwen2_vl":
            raise WeightsError(f"hpsv3: base {base} is a {getattr(config, 'model_type', None)!r} model; HPSv3 is "
                               "built on Qwen2-VL (HPSv3++ on Qwen3-VL is not supported, see docs/scorers.md)")
        body_sd, head_sd, _ = map_official_keys(load_state_dict(checkpoint, "hpsv3 checkpoint"))
        embed = body_sd.get("language_model.embed_tokens.weight")
        if embed is None or "5.weight" not in head_sd:
            raise WeightsError(f"hpsv3: {checkpoint} is not an HPSv3 checkpoint (no decoder embedding or rm_head)")
        # the official model was resized to len(tokenizer) after adding <|Reward|>
        config.text_config.vocab_size = embed.shape[0]
        if reward_id >= embed.shape[0]:
            raise WeightsError(f"hpsv3: <|Reward|> is token {reward_id} of {base}'s tokenizer, but {checkpoint} "
                               f"has {embed.shape[0]} embeddings: the base does not match the checkpoint")
        body = build_body(config, dtype=dtype)
        missing, unexpected = body.load_state_dict(body_sd, strict=False)
        if missing or unexpected:
            raise WeightsError(f"hpsv3: {checkpoint} does not fit {base}'s config: missing {missing[:6]}, "
                               f"unexpected {unexpected[:6]}")
        head = build_head(config.text_config.hidden_size, head_sd["5.weight"].shape[0])
        head.load_state_dict(head_sd)
        body.to(device).eval()
        head.to(device, torch.float32).eval()
        self._device, self._processor = device, processor
        self._net = HPSv3Head(body, head, reward_id)

    def close(self) -> None:
        self._net = None

    # -- scoring --------------------------------------------------------------------------
    def messages(self, prompt: str) -> list[dict]:
        """The one user turn of an image (the image part first, then the text)."""
        return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt().text(prompt)}]}]

    def forward(self, images: Sequence, prompts: Sequence[str], resized: bool = False) -> list[tuple[float, float]]:
        """(mu, log sigma) for each (PIL image, prompt): one padded batch (``resized``: the images
        went through :func:`resize_for_hpsv3` already)."""
        import torch

        self.setup()
        texts = [self._processor.apply_chat_template(self.messages(p), tokenize=False, add_generation_prompt=True)
                 for p in prompts]
        resized = list(images) if resized else [resize_for_hpsv3(im, self.max_pixels) for im in images]
        batch = self._processor(text=texts, images=resized, padding=True, return_tensors="pt")
        batch = {k: v.to(self._device) for k, v in batch.items()}
        with torch.inference_mode():
            out = self._net(batch["input_ids"], batch["attention_mask"], batch["pixel_values"], batch["image_grid_thw"])
        return [(float(a), float(b)) for a, b in out.cpu().tolist()]

    def score_batch(self, tasks: Sequence[Task]) -> list[dict[int, ImageResult]]:
        self.setup()
        out: list[dict[int, ImageResult]] = [{} for _ in tasks]
        ready: list[tuple[int, int, Any]] = []

        def flush():
            if not ready:
                return
            pairs = self.forward([im for _, _, im in ready], [tasks[t][0].prompt for t, _, _ in ready], resized=True)
            for (t, k, _), (mu, log_sigma) in zip(ready, pairs, strict=True):
                sigma = math.exp(log_sigma) if log_sigma < 700 else math.inf
                if math.isfinite(mu) and math.isfinite(sigma):
                    out[t][k] = ImageResult(mu, sigma=sigma)
                else:
                    out[t][k] = ImageResult.failed(f"non-finite head output (mu {mu}, log sigma {log_sigma})")
            ready.clear()

        for t, (item, indices) in enumerate(tasks):
            images, failed = self.load_images(item, indices)
            out[t].update(failed)
            for k in indices:
                if k in images:
                    try:  # Qwen's resize refuses an aspect ratio over 200: that image fails alone
                        image = resize_for_hpsv3(images[k], self.max_pixels)
                    except ValueError as exc:
                        out[t][k] = ImageResult.failed(f"cannot resize for HPSv3: {exc}")
                        continue
                    ready.append((t, k, image))
                    if len(ready) >= self.image_batch:
                        flush()
        flush()
        return out

