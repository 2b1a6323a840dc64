"""``aesthetic``: the LAION improved aesthetic predictor.

An MLP (five linear layers, no activations: 768 -> 1024 -> 128 -> 64 -> 16 -> 1, dropout in
between, state-dict keys ``layers.0/2/4/6/7``) applied to the L2-normalised image embedding of
CLIP ViT-L/14 (``openai/clip-vit-large-patch14``), images prepared with OpenAI CLIP's transform
as the predictor's inference script does. The prompt is ignored. Head weights:
``sac+logos+ava1-l14-linearMSE.pth`` from github.com/christophschuhmann/improved-aesthetic-predictor
(a plain state dict, read with ``weights_only=True``), found in the model folder or passed with
``-S head=PATH``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefbench.scorers.encoders._common import EncoderScorer, clip_transform
from prefbench.scorers.encoders.clip import image_features, load_image_processor
from prefbench.weights import WeightsError, from_pretrained, load_state_dict

HEAD_FILE = "sac+logos+ava1-l14-linearMSE.pth"
HEAD_URL = "https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/sac%2Blogos%2Bava1-l14-linearMSE.pth"


def aesthetic_mlp(input_size: int):
    """The predictor's layer stack (dropout slots kept so the official keys load strictly)."""
    from torch import nn

    class AestheticMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(input_size, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

        def forward(self, x):
            return self.layers(x)

    return AestheticMLP()


class AestheticScorer(EncoderScorer):
    """LAION improved aesthetic predictor: MLP on normalised CLIP ViT-L/14 image embeddings."""

    name = "aesthetic"
    extra = "aesthetic"

    def __init__(self, *, model: str | None = None, head: str | None = None, device: str = "auto",
                 dtype: str = "auto", image_batch: int = 64, workers: int = 4):
        """``model``: the CLIP image tower (hub id or folder, default openai/clip-vit-large-patch14);
        ``head``: the MLP weights file (default: ``sac+logos+ava1-l14-linearMSE.pth`` in the model folder)."""
        super().__init__(model=model or "openai/clip-vit-large-patch14", device=device, dtype=dtype,
                         image_batch=image_batch, workers=workers)
        self.head = head

    def model_info(self) -> dict:
        return {"id": self.model, "revision": None, "head": self._head_path(check=False)}

    def _head_path(self, check: bool = True) -> str:
        if self.head:
            path = Path(self.head).expanduser()
        else:
            path = Path(self.model).expanduser() / HEAD_FILE
        if check and not path.is_file():
            raise WeightsError(
                f"aesthetic head: {path} not found; download {HEAD_FILE} ({HEAD_URL}) and pass "
                f"-S head=PATH (or put it in the model folder)")
        return str(path)

    def _load(self) -> None:
        from transformers import CLIPModel

        sd = load_state_dict(Path(self._head_path()), "aesthetic head")
        if "layers.0.weight" not in sd:
            raise WeightsError(f"aesthetic head: {self._head_path()} has no layers.0.weight (keys: {sorted(sd)[:5]}...)")
        self._mlp = aesthetic_mlp(sd["layers.0.weight"].shape[1])
        self._mlp.load_state_dict(sd)
        self._mlp.to(self._device).eval()  # the head runs in float32, as the reference does
        self._model = from_pretrained(CLIPModel.from_pretrained, self.model, "aesthetic CLIP model", dtype=self._dtype)
        self._model.to(self._device).eval()
        self._image_processor = load_image_processor(self.model, "aesthetic image processor")

    def _preprocess(self, image):
        # OpenAI CLIP's transform, as the predictor's own inference script (clip.load) applies it
        ip = self._image_processor
        return clip_transform(image, ip.crop_size["height"], ip.image_mean, ip.image_std)

    def _forward(self, pixels, prompts: Sequence[str]) -> list[float]:
        import torch

        emb = image_features(self._model, pixels.to(self._device, self._dtype)).float()
        emb = emb / torch.linalg.vector_norm(emb, dim=-1, keepdim=True).clamp_min(1e-12)
        return self._mlp(emb)[:, 0].cpu().tolist()
