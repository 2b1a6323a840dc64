"""``demo_oracle``: the demo world's noise-free latent utility, i.e. the accuracy ceiling.

Human ranks in the demo world are the utility plus simulated annotator noise, so no scorer can
be expected to beat this row by more than chance. Only items that carry ``meta["utility"]``
(the ``demo`` dataset) can be scored; any other item gets status ``error``.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefbench.data.model import Item
from prefbench.scorers.base import ImageResult, Scorer


class DemoOracle(Scorer):
    name = "demo_oracle"
    #: what ``prefbench list`` shows (registered by this distribution's ``prefbench.scorers`` entry point)
    description = "the demo world's noise-free utility: the accuracy ceiling of the demo splits"
    batch_size = 256

    def __init__(self, *, seed: int = 0):
        super().__init__(seed=seed)

    def score_item(self, item: Item, indices: Sequence[int]) -> dict[int, ImageResult]:
        utility = item.meta.get("utility")
        if utility is None or len(utility) != item.n_images:
            return {k: ImageResult.failed("demo_oracle needs the demo dataset's latent utility") for k in indices}
        return {k: ImageResult(float(utility[k]), detail={"flaws": item.meta.get("flaws", [[]] * item.n_images)[k]})
                for k in indices}
