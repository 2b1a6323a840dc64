"""``random``: the leaderboard's floor row. Scores are uniform in [0, 1), a pure function of
(seed, item id, image index), so reruns and resumed runs give identical numbers."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from prefbench.data.model import Item
from prefbench.scorers.base import ImageResult, Scorer


class RandomScorer(Scorer):
    name = "random"
    batch_size = 64

    def __init__(self, *, seed: int = 0, check_images: bool = True):
        """``check_images``: decode every image so unreadable ones get status ``error`` (as a
        real scorer would), making the floor comparable with other runs on the same data."""
        super().__init__(seed=seed)
        self.check_images = bool(check_images)

    def _value(self, item_id: str, index: int) -> float:
        digest = hashlib.sha256(f"{item_id}\0{index}".encode()).digest()
        key = int.from_bytes(digest[:8], "little")
        return float(np.random.default_rng([self.seed, key]).random())

    def score_item(self, item: Item, indices: Sequence[int]) -> dict[int, ImageResult]:
        failed = {}
        if self.check_images:
            _, failed = self.load_images(item, indices)
        return {k: failed.get(k) or ImageResult(self._value(item.item_id, k)) for k in indices}
