"""What the encoder baselines share: device/dtype choice, OpenAI CLIP's image transform and a
batched scoring loop whose image decoding and preprocessing run on worker threads while the
model computes. Finding and loading weights (with offline errors that name the file to provide)
is in :mod:`prefbench.weights`, shared with the VLM scorers and the trainer.

Torch is imported inside functions only: importing this module must stay cheap so that the
registry can describe the scorers without loading a framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from prefbench.errors import ImageError
from prefbench.scorers.base import ImageResult, Scorer, Task
from prefbench.stopping import Stopped, check_stop

DTYPES = ("auto", "float32", "float16", "bfloat16")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def pick_dtype(dtype: str, device: str):
    """``auto``: float16 on CUDA (as the reference scripts run under autocast), float32 on CPU."""
    import torch

    if dtype == "auto":
        return torch.float16 if str(device).startswith("cuda") else torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]


def clip_transform(image, size: int, mean=OPENAI_MEAN, std=OPENAI_STD):
    """OpenAI CLIP's ``_transform(n_px)``: bicubic resize of the short side on the PIL image,
    centre crop (torchvision's rounding), RGB, to tensor, normalise. The CLIP and aesthetic
    baselines (as ImageReward's paper ran them, through the ``clip`` package) and ImageReward use
    it; transformers' image processor crops odd margins one pixel differently."""
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode

    image = F.center_crop(F.resize(image, size, InterpolationMode.BICUBIC), size)
    return F.normalize(F.to_tensor(image.convert("RGB")), mean, std)


class EncoderScorer(Scorer):
    """Base of the encoder baselines.

    Subclasses implement :meth:`_load` (build the model on ``self._device``/``self._dtype``),
    :meth:`_preprocess` (PIL image -> CPU tensor; runs on worker threads) and
    :meth:`_forward` (stacked pixel tensors + their prompts -> one float per image).
    """

    #: install extra that provides the dependencies
    extra: ClassVar[str] = ""
    #: items per ``score_batch`` call (the runner's unit); images are then packed into
    #: forward passes of ``image_batch``
    batch_size = 32

    def __init__(self, *, model: str | None = None, device: str = "auto", dtype: str = "auto",
                 image_batch: int = 64, workers: int = 4):
        """``device``: auto | cpu | cuda[:N]; ``dtype``: auto (float16 on CUDA, float32 on CPU) |
        float32 | float16 | bfloat16; ``image_batch``: images per forward pass; ``workers``:
        threads that decode and preprocess images while the model runs."""
        super().__init__(model=model)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if int(image_batch) < 1 or int(workers) < 1:
            raise ValueError("image_batch and workers must be >= 1")
        self.device = str(device)
        self.dtype = dtype
        self.image_batch = int(image_batch)
        self.workers = int(workers)
        self._pool: ThreadPoolExecutor | None = None
        self._ready = False

    # -- to implement ---------------------------------------------------------------------
    def _load(self) -> None:
        raise NotImplementedError

    def _preprocess(self, image):
        raise NotImplementedError

    def _forward(self, pixels, prompts: Sequence[str]) -> list[float]:
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------
    def setup(self) -> None:
        if self._ready:
            return
        self._device = pick_device(self.device)
        self._dtype = pick_dtype(self.dtype, self._device)
        self._load()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"{self.name}-decode")
        self._ready = True

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _prepare(self, ref):
        """Decode and preprocess one image (worker thread)."""
        return self._preprocess(ref.open())

    # -- scoring --------------------------------------------------------------------------
    def score_batch(self, tasks: Sequence[Task]) -> list[dict[int, ImageResult]]:
        import torch

        self.setup()
        jobs = [(t, k) for t, (item, indices) in enumerate(tasks) for k in indices]
        futures = [self._pool.submit(self._prepare, tasks[t][0].images[k]) for t, k in jobs]
        out: list[dict[int, ImageResult]] = [{} for _ in tasks]
        ready: list[tuple[int, int, Any]] = []

        def flush():
            if not ready:
                return
            check_stop("before an encoder's forward pass")  # a caller's deadline stops a long batch here
            pixels = torch.stack([p for _, _, p in ready])
            scores = self._forward(pixels, [tasks[t][0].prompt for t, _, _ in ready])
            for (t, k, _), s in zip(ready, scores, strict=True):
                out[t][k] = ImageResult(float(s))
            ready.clear()

        # futures are consumed in order, so the threads run ahead of the forward passes
        try:
            with torch.inference_mode():
                for (t, k), fut in zip(jobs, futures, strict=True):
                    try:
                        ready.append((t, k, fut.result()))
                    except ImageError as exc:
                        out[t][k] = ImageResult.failed(str(exc))
                    if len(ready) >= self.image_batch:
                        flush()
                flush()
        except Stopped:
            for fut in futures:  # the decodes not started yet are not wanted either
                fut.cancel()
            raise
        return out
