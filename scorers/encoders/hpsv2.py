"""``hpsv2``: Human Preference Score v2 / v2.1 on open_clip (``open-clip-torch`` from PyPI).

The score is HPSv2's ``img_score.score``: an open_clip ViT-H-14 with the HPS checkpoint,
``image_features @ text_features.T`` of the normalised features (no temperature), with HPSv2's
own evaluation preprocessing, which is not open_clip's default:

    RGB -> ToTensor -> resize the *tensor* so the longer side is ``image_size`` (bicubic) ->
    pad to a square with zeros (before normalisation) -> Normalize(OpenAI mean/std)

(``light_augmentation=True`` in HPSv2's ``create_model_and_transforms``). On CUDA the model keeps
float32 weights and runs under autocast, as the reference does.

Weights: ``HPS_v2.1_compressed.pt`` (or ``HPS_v2_compressed.pt`` with ``-S version=v2.0``),
``{"state_dict": ...}`` read with ``weights_only=True``; ``--model`` is that file, a folder
holding it (with an optional ``open_clip_config.json`` for another architecture), or a hub repo
(default ``xswu/HPSv2``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from prefbench.scorers.encoders._common import EncoderScorer
from prefbench.weights import WeightsError, hub_file, load_state_dict

HPS_FILES = {"v2.0": "HPS_v2_compressed.pt", "v2.1": "HPS_v2.1_compressed.pt"}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def hps_preprocess(image, image_size: int, mean=OPENAI_MEAN, std=OPENAI_STD, antialias: bool = True):
    """HPSv2's evaluation transform (``image_transform(..., resize_longest_max=True)``).

    HPSv2 resizes a *tensor* without naming ``antialias``, so its result depends on torchvision:
    antialiased since 0.17, not before (HPSv2's 2023 release ran on the older default). The two
    differ by ~1e-2 in score; ``antialias=False`` reproduces the older behaviour."""
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode

    x = F.to_tensor(image.convert("RGB"))
    height, width = x.shape[1:]
    scale = image_size / float(max(height, width))
    if scale != 1.0:
        new_size = [round(height * scale), round(width * scale)]
        x = F.resize(x, new_size, InterpolationMode.BICUBIC, antialias=antialias)
    # HPSv2 pads only when it resized; a square image of the right size needs neither, and a
    # non-square one whose long side already fits would not batch, so pad whenever needed
    pad_h, pad_w = image_size - x.shape[1], image_size - x.shape[2]
    if pad_h or pad_w:
        x = F.pad(x, padding=[pad_w // 2, pad_h // 2, pad_w - pad_w // 2, pad_h - pad_h // 2], fill=0)
    return F.normalize(x, mean=mean, std=std)


class HPSv2Scorer(EncoderScorer):
    """HPS v2 / v2.1: open_clip ViT-H-14 + the HPS checkpoint, with HPSv2's preprocessing."""

    name = "hpsv2"
    extra = "hpsv2"

    def __init__(self, *, model: str | None = None, version: str = "v2.1", arch: str = "ViT-H-14",
                 antialias: bool = True, device: str = "auto", dtype: str = "auto", image_batch: int = 64,
                 workers: int = 4):
        """``model``: checkpoint file, folder or hub repo (default xswu/HPSv2); ``version``: v2.1 | v2.0
        (which checkpoint file); ``arch``: open_clip model name, used unless the folder has an
        ``open_clip_config.json``; ``antialias``: False resizes as HPSv2 did under torchvision<0.17."""
        if version not in HPS_FILES:
            raise ValueError(f"version must be one of {', '.join(HPS_FILES)}, got {version!r}")
        super().__init__(model=model or "xswu/HPSv2", device=device, dtype=dtype, image_batch=image_batch,
                         workers=workers)
        self.version = version
        self.arch = arch
        self.antialias = bool(antialias)

    def model_info(self) -> dict:
        return {"id": self.model, "revision": None, "file": HPS_FILES[self.version], "arch": self.arch}

    def _model_config(self, checkpoint: Path) -> dict:
        import open_clip

        local = checkpoint.parent / "open_clip_config.json"
        if local.is_file():
            return json.loads(local.read_text())["model_cfg"]
        cfg = open_clip.get_model_config(self.arch)
        if cfg is None:
            raise WeightsError(f"hpsv2: open_clip has no model config {self.arch!r} (and {local} does not exist)")
        return cfg

    def _load(self) -> None:
        import open_clip

        checkpoint = hub_file(self.model, HPS_FILES[self.version], f"hpsv2 {self.version} checkpoint")
        cfg = self._model_config(checkpoint)
        self._model = open_clip.CLIP(**cfg, output_dict=True)
        missing, unexpected = self._model.load_state_dict(load_state_dict(checkpoint, "hpsv2 checkpoint"), strict=False)
        if missing or unexpected:
            raise WeightsError(f"hpsv2: {checkpoint} does not fit {self.arch}: missing {missing[:5]}, "
                               f"unexpected {unexpected[:5]}")
        self._model.to(self._device).eval()
        text_cfg = cfg.get("text_cfg", {})
        if text_cfg.get("hf_tokenizer_name"):
            self._tokenizer = open_clip.tokenizer.HFTokenizer(text_cfg["hf_tokenizer_name"],
                                                              context_length=text_cfg.get("context_length", 77))
        else:
            self._tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=text_cfg.get("context_length", 77))
        size = self._model.visual.image_size
        self._image_size = size[0] if isinstance(size, (tuple, list)) else size

    def _preprocess(self, image):
        return hps_preprocess(image, self._image_size, antialias=self.antialias)

    def _forward(self, pixels, prompts: Sequence[str]) -> list[float]:
        import torch

        unique = list(dict.fromkeys(prompts))
        text = self._tokenizer(unique).to(self._device)
        autocast = self._device.startswith("cuda") and self._dtype != torch.float32
        with torch.autocast("cuda", dtype=self._dtype, enabled=autocast):
            img = self._model.encode_image(pixels.to(self._device), normalize=True)
            txt = self._model.encode_text(text, normalize=True)
        txt = txt[[unique.index(p) for p in prompts]]
        return (img.float() * txt.float()).sum(-1).cpu().tolist()
