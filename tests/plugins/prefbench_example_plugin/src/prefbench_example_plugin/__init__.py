"""Example third-party scorers, declared under the ``prefbench.scorers`` entry-point group.

- ``coin_pairwise``: an anchor-pairwise scorer (anchor = 0.5, others = P(beats anchor)) whose
  probabilities lean towards the truth by ``skill``; exercises the calibration metrics.
- ``sleepy``: scores like ``random`` but sleeps per item, so tests can kill a run mid-way.
- ``broken`` points at a module that does not exist (a warning, not a crash).
- ``random`` clashes with the built-in (the built-in wins).
"""

import hashlib
import time

import numpy as np

from prefbench.scorers.base import ImageResult, Scorer


def _u(seed, item_id, k):
    key = int.from_bytes(hashlib.sha256(f"{item_id}/{k}".encode()).digest()[:8], "little")
    return float(np.random.default_rng([seed, key]).random())


class CoinPairwise(Scorer):
    """Noisy anchor comparisons that lean towards the human ranking."""

    name = "coin_pairwise"
    anchor_pairwise = True

    def __init__(self, *, seed: int = 0, skill: float = 0.3):
        super().__init__(seed=seed)
        self.skill = skill

    def score_item(self, item, indices):
        anchor = int(np.random.default_rng([self.seed, len(item.item_id)]).integers(item.n_images))
        out = {}
        for k in indices:
            if k == anchor:
                out[k] = ImageResult(0.5, prob=0.5, anchor_index=anchor)
                continue
            truth = 0.5 if item.ranks[k] == item.ranks[anchor] else float(item.ranks[k] < item.ranks[anchor])
            p = float(np.clip(0.5 + self.skill * (truth - 0.5) * 2 * _u(self.seed, item.item_id, k)
                              + 0.2 * (_u(self.seed + 1, item.item_id, k) - 0.5), 0, 1))
            out[k] = ImageResult(p, prob=p, anchor_index=anchor)
        return out


class Sleepy(Scorer):
    """Random scores, slowly."""

    name = "sleepy"
    batch_size = 1

    def __init__(self, *, seed: int = 0, delay: float = 0.05):
        super().__init__(seed=seed)
        self.delay = delay

    def score_item(self, item, indices):
        time.sleep(self.delay)
        return {k: ImageResult(_u(self.seed, item.item_id, k)) for k in indices}
