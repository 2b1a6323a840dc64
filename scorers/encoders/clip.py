"""``clip`` and ``pickscore``: text-image similarity from a transformers CLIP model.

* ``clip`` scores cosine(text, image) of the normalised projected embeddings, as the CLIP
  baseline in the ImageReward paper (its ``CLIPScore``) does.
* ``pickscore`` scores ``logit_scale.exp() * cosine``, exactly the quantity PickScore's README
  softmaxes over a prompt's images (the softmax is monotone per prompt, so the raw logit is
  the per-image score). Model ``yuvalkirstain/PickScore_v1``; tokenizer and image processor from
  ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``.

Preprocessing follows each baseline's reference (``-S preprocess=`` overrides it):

* ``clip`` (default for ``clip``): OpenAI CLIP's own transform, which ImageReward's paper ran its
  CLIP baseline through; size and mean/std come from the checkpoint's preprocessor config.
* ``processor`` (default for ``pickscore``): the checkpoint's ``CLIPImageProcessor`` on its PIL
  backend, as PickScore's README calls it. transformers 5 otherwise defaults to a torchvision
  backend whose resize differs in the third decimal, and the processor's centre crop places odd
  margins one pixel off torchvision's, so the two options differ on some non-square images.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefbench.scorers.encoders._common import EncoderScorer, clip_transform
from prefbench.weights import from_pretrained

PREPROCESS = ("clip", "processor")


def load_image_processor(name: str, what: str):
    """The PIL-backed image processor on transformers 4 and 5."""
    import transformers
    from transformers import AutoImageProcessor

    if int(transformers.__version__.split(".")[0]) >= 5:
        return from_pretrained(AutoImageProcessor.from_pretrained, name, what, backend="pil")
    return from_pretrained(AutoImageProcessor.from_pretrained, name, what, use_fast=False)


def image_features(model, pixel_values):
    """Projected image embeddings (transformers 5 wraps them in an output object)."""
    out = model.get_image_features(pixel_values=pixel_values)
    return out if hasattr(out, "shape") else out.pooler_output


def text_features(model, **text_inputs):
    out = model.get_text_features(**text_inputs)
    return out if hasattr(out, "shape") else out.pooler_output


class ClipScorer(EncoderScorer):
    """CLIP similarity: cosine of the normalised text and image embeddings (any CLIP checkpoint)."""

    name = "clip"
    extra = "clip"
    default_model = "openai/clip-vit-large-patch14"
    #: multiply the cosine by the model's learned temperature (PickScore's score)
    scale_by_logit = False
    default_preprocess = "clip"

    def __init__(self, *, model: str | None = None, processor: str | None = None, preprocess: str | None = None,
                 device: str = "auto", dtype: str = "auto", image_batch: int = 64, workers: int = 4):
        """``model``: hub id or local folder of a CLIP checkpoint; ``processor``: where the
        tokenizer and image processor config come from (default: the model's folder);
        ``preprocess``: clip | processor (see the module docstring)."""
        super().__init__(model=model or self.default_model, device=device, dtype=dtype,
                         image_batch=image_batch, workers=workers)
        self.processor = processor or self.default_processor()
        self.preprocess = preprocess or self.default_preprocess
        if self.preprocess not in PREPROCESS:
            raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS)}, got {self.preprocess!r}")

    def default_processor(self) -> str:
        return self.model

    def model_info(self) -> dict:
        return {"id": self.model, "revision": None, "processor": self.processor}

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        what = f"{self.name} model"
        self._model = from_pretrained(AutoModel.from_pretrained, self.model, what, dtype=self._dtype)
        self._model.to(self._device).eval()
        self._tokenizer = from_pretrained(AutoTokenizer.from_pretrained, self.processor, f"{self.name} tokenizer")
        self._image_processor = load_image_processor(self.processor, f"{self.name} image processor")
        self._text_cache: dict[str, object] = {}

    def _preprocess(self, image):
        if self.preprocess == "clip":
            ip = self._image_processor
            return clip_transform(image, ip.crop_size["height"], ip.image_mean, ip.image_std)
        return self._image_processor(images=image, return_tensors="pt")["pixel_values"][0]

    def _text_embeddings(self, prompts: Sequence[str]):
        """Normalised text embeddings of the distinct prompts (cached: an item's images share one)."""
        import torch

        todo = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if todo:
            inputs = self._tokenizer(todo, padding=True, truncation=True, max_length=77, return_tensors="pt")
            emb = text_features(self._model, **inputs.to(self._device)).float()
            emb = emb / torch.norm(emb, dim=-1, keepdim=True)
            for p, e in zip(todo, emb, strict=True):
                self._text_cache[p] = e
        if len(self._text_cache) > 4096:  # keep memory bounded on long runs
            keep = set(prompts)
            self._text_cache = {p: e for p, e in self._text_cache.items() if p in keep}
        return torch.stack([self._text_cache[p] for p in prompts])

    def _forward(self, pixels, prompts: Sequence[str]) -> list[float]:
        import torch

        img = image_features(self._model, pixels.to(self._device, self._dtype)).float()
        img = img / torch.norm(img, dim=-1, keepdim=True)
        txt = self._text_embeddings(prompts)
        scores = (img * txt).sum(-1)
        if self.scale_by_logit:
            scores = self._model.logit_scale.exp().float() * scores
        return scores.cpu().tolist()


class PickScoreScorer(ClipScorer):
    """PickScore v1: logit_scale x cosine(text, image), as PickScore's README computes it."""

    name = "pickscore"
    extra = "pickscore"
    default_model = "yuvalkirstain/PickScore_v1"
    scale_by_logit = True
    default_preprocess = "processor"

    def default_processor(self) -> str:
        # PickScore ships no processor of its own: its README pairs it with the LAION ViT-H one,
        # unless the model is a local folder that has its own tokenizer
        from pathlib import Path

        local = Path(self.model).expanduser()
        if local.is_dir() and (local / "preprocessor_config.json").is_file():
            return self.model
        return "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
