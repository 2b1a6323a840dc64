"""The data model: an item is one prompt, its candidate images and the human ranking of them."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefbench.data.images import decode_image, open_image_file


@dataclass(frozen=True)
class ImageRef:
    """Where an image comes from: a file path, or bytes held by the loader (parquet cells).

    ``key`` is a stable name used in hashes and samples (relative path, or ``row:col``).
    ``root``, when set, confines ``path``: a path that resolves outside it (``..``, an absolute
    path, a symlink) is never opened (see :func:`~prefbench.data.confine`).
    """

    key: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)
    loader: Callable[[], bytes] | None = field(default=None, repr=False, compare=False)
    root: Path | None = field(default=None, compare=False)
    #: a shared dict that keeps the decoded image (or why it failed) after the first open: every
    #: use of this ref then shares one decode (the API's round robin opens each image n-1 times,
    #: and the pixel and scan budgets are counted once); None: decode on every open
    memo: dict | None = field(default=None, repr=False, compare=False)

    def read_bytes(self) -> bytes:
        from prefbench.errors import ImageError

        if self.data is not None:
            return self.data
        if self.loader is not None:
            return self.loader()
        if self.path is None:
            raise ImageError(f"{self.key}: no path or data")
        with open_image_file(self.path, self.root) as fh:
            try:
                return fh.read()
            except OSError as exc:
                raise ImageError(f"{self.path}: cannot read ({exc.strerror or exc})") from None

    def open(self):
        """Decode to an RGB ``PIL.Image``; raises :class:`~prefbench.errors.ImageError`.

        A file's header is checked (pixel limit) before the rest of it is read. With a ``memo``,
        the first open decodes and later ones get a copy (or the same error)."""
        from prefbench.errors import ImageError

        if self.memo is None:
            return self._decode()
        if "error" in self.memo:
            raise ImageError(self.memo["error"])
        if "image" not in self.memo:
            try:
                self.memo["image"] = self._decode()
            except ImageError as exc:
                self.memo["error"] = str(exc)
                raise
        return self.memo["image"].copy()

    def _decode(self):
        if self.data is None and self.loader is None and self.path is not None:
            with open_image_file(self.path, self.root) as fh:
                return decode_image(fh, name=str(self.path))
        return decode_image(io.BytesIO(self.read_bytes()), name=str(self.path or self.key))


@dataclass(frozen=True)
class Item:
    """One prompt with N candidate images.

    ``ranks[i]`` is the human rank of ``images[i]``: 1 = best, equal numbers are ties.
    For a two-image dataset with soft labels (Pick-a-Pic) ``label_0`` holds the original label
    (1 = image 0 preferred, 0.5 = tie, 0 = image 1 preferred).

    Sets with richer labels keep them too (the conventions that need them read them):
    ``human[i]``, a human score of ``images[i]`` (higher = better; GenAI-Bench-Rank's mean rating,
    EvalMuse's total score); ``label``, a categorical human label of the item (GenAI-Bench's
    ``vote_type``); ``elements[i]``, per-image element labels ``{element: 0/1}`` (EvalMuse).
    """

    item_id: str
    prompt: str
    images: Sequence[ImageRef]
    ranks: Sequence[float]
    label_0: float | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    human: Sequence[float] | None = None
    label: str | None = None
    elements: Sequence[dict[str, float]] | None = None

    def __post_init__(self):
        if len(self.images) != len(self.ranks):
            raise ValueError(f"item {self.item_id}: {len(self.images)} images but {len(self.ranks)} ranks")
        for name in ("human", "elements"):
            value = getattr(self, name)
            if value is not None and len(value) != len(self.images):
                raise ValueError(f"item {self.item_id}: {len(self.images)} images but {len(value)} {name} values")

    @property
    def n_images(self) -> int:
        return len(self.images)

    def annotation(self) -> dict[str, Any]:
        """What identifies this item's content (used for hashing and in samples)."""
        out: dict[str, Any] = {
            "item_id": self.item_id,
            "prompt": self.prompt,
            "images": [ref.key for ref in self.images],
            "ranks": list(self.ranks),
        }
        if self.label_0 is not None:
            out["label_0"] = self.label_0
        if self.human is not None:
            out["human"] = list(self.human)
        if self.label is not None:
            out["label"] = self.label
        if self.elements is not None:
            out["elements"] = [dict(e) for e in self.elements]
        return out


@dataclass
class Split:
    """A loaded split: its items plus the convention the official code scores it with."""

    dataset: str
    split: str
    convention: str
    items: list[Item]
    source: str = ""
    note: str = ""
    #: the folder the images must lie in (the data dir); set by the loader
    root: Path | None = None

    def content_hash(self) -> str:
        """sha256 over every item's id, prompt, image keys and ranks, in order.

        Image bytes are not hashed (they can be gigabytes); their keys are.
        """
        h = hashlib.sha256()
        for item in self.items:
            h.update(json.dumps(item.annotation(), sort_keys=True, ensure_ascii=False).encode())
            h.update(b"\n")
        return h.hexdigest()

    def __len__(self) -> int:
        return len(self.items)

    @property
    def n_images(self) -> int:
        return sum(item.n_images for item in self.items)
