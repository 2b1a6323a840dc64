"""The client's side of the wire, as plain functions: images encoded as a request carries them,
items cut into requests of bounded size, and each answered item checked into a
:class:`RemoteScoredItem`. The HTTP calls are :class:`prefbench.serve.client.Client`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from prefbench.api import _image_bytes, rank_scores
from prefbench.errors import ServeError, UsageError


@dataclass
class RemoteScoredItem:
    """One item as the server scored it: the properties of :class:`prefbench.api.ScoredItem`."""

    prompt: str
    scores: list[float | None]
    statuses: list[str]
    details: list[dict] = field(default_factory=list)
    item_id: str = ""
    mode: str = "anchor"

    @property
    def errors(self) -> list[str | None]:
        return [d.get("error") if s != "ok" else None for s, d in zip(self.statuses, self.details)]

    @property
    def ok(self) -> bool:
        return all(s == "ok" for s in self.statuses)

    def ranks(self) -> list[int]:
        return rank_scores(self.scores)


IMAGE_FORMATS = ("png", "jpeg")


def encode_image(image: Any, n: int = 0, image_format: str = "png", jpeg_quality: int = 95) -> bytes:
    """Encoded bytes of one image: bytes as they are, a path's file, PIL and arrays as PNG
    (lossless, the API's bytes) or, with ``image_format="jpeg"``, JPEG of ``jpeg_quality``
    (a tenth of the size of a 1024x1024 PNG; the scores then differ slightly from the PNG's)."""

    if is_array(image):
        image = array_to_pil(image)
    if image_format == "jpeg" and hasattr(image, "save") and hasattr(image, "mode"):
        import io

        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=int(jpeg_quality))
        return buf.getvalue()
    data, why = _image_bytes(image, n)
    if data is None:
        from prefbench.errors import ImageError

        raise ImageError(f"image {n}: {why}")
    return data


def is_array(x: Any) -> bool:
    """Whether ``x`` is an array (numpy, torch on CPU, ...) rather than a PIL image."""
    return hasattr(x, "__array_interface__") and not hasattr(x, "save")


def array_to_pil(array: Any):
    """An (H, W, C) or (H, W) uint8 array (floats in [0, 1] are scaled) as a PIL image."""
    import numpy as np
    from PIL import Image

    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = (a.astype(np.float64) * 255).round().clip(0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise UsageError(f"an image array must be (H, W, 3), (H, W, 4) or (H, W), got shape {a.shape}")
    return Image.fromarray(a)


def answer_item(entry: dict, answer: Any, where: str) -> RemoteScoredItem:
    """One answered item, checked: a malformed answer raises ServeError; an ``ok`` whose score
    is not a finite number is that image's error (never a NaN reward with status ok)."""
    n = len(entry["images"])
    try:
        scores, statuses = list(answer["scores"]), list(answer["statuses"])
        details = list(answer.get("details") or [{}] * n)
    except (KeyError, TypeError) as exc:
        raise ServeError(f"{where}: a malformed answer ({type(exc).__name__}: {exc})") from None
    if not (len(scores) == len(statuses) == len(details) == n) or not all(isinstance(d, dict) for d in details):
        raise ServeError(f"{where}: a malformed answer: {len(scores)} scores, {len(statuses)} statuses and "
                         f"{len(details)} details for {n} images")
    for k, (score, status) in enumerate(zip(scores, statuses)):
        finite = isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score)
        if status == "ok" and not finite:
            scores[k], statuses[k] = None, "error"
            details[k] = {**details[k], "error": f"the server answered ok with a score that is not a finite number "
                                                 f"({score!r})"}
        elif status not in ("ok", "unparsed", "error"):
            raise ServeError(f"{where}: a malformed answer: unknown status {status!r}")
        elif status != "ok":
            scores[k] = None
    return RemoteScoredItem(entry["prompt"], scores, statuses, details, str(answer.get("item_id", "")),
                            answer.get("mode", "anchor"))


def request_chunks(entries: list[dict], max_images: int, max_bytes: int | None = None) -> list[list[dict]]:
    """Consecutive runs of ``entries`` of at most ``max_images`` images and ``max_bytes`` of
    base64 (an item with more goes alone)."""
    out: list[list[dict]] = []
    size = nbytes = 0
    for entry in entries:
        n = len(entry["images"])
        b = sum(len(text) for text in entry["images"])
        if not out or size + n > max_images or (max_bytes is not None and nbytes + b > max_bytes):
            out.append([])
            size = nbytes = 0
        out[-1].append(entry)
        size += n
        nbytes += b
    return out
