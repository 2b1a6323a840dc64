"""A third-party dataset, declared under the ``prefbench.datasets`` entry-point group: a
:class:`DatasetSpec` naming this module, whose ``load`` builds the split.

``toy``: 6 prompts x 3 solid-colour images made in memory (no data dir); the human ranking
prefers the redder image, so a scorer that reads redness would be perfect.
"""

import io

from prefbench.data import DatasetSpec
from prefbench.data.model import ImageRef, Item, Split

SPEC = DatasetSpec("toy", ("test",), "imagereward", "prefbench_example_plugin.toy",
                   "a toy dataset from a plugin: 6 prompts x 3 solid colours", needs_data_dir=False)
#: a plugin that tries to take a built-in's name (the built-in wins, with a warning)
CLASH = DatasetSpec("demo", ("test",), "imagereward", "prefbench_example_plugin.toy", "not the demo world",
                    needs_data_dir=False)


def _png(rgb) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (24, 16), rgb).save(buf, format="PNG")
    return buf.getvalue()


def load(split, data_dir=None, with_images=True):
    items = []
    for p in range(6):
        reds = [250 - 60 * k - 5 * p for k in range(3)]
        refs = [ImageRef(f"toy/{p}_{k}.png", data=_png((r, 40, 40)) if with_images else None)
                for k, r in enumerate(reds)]
        items.append(Item(f"toy-{p}", f"a red square, take {p}", refs, [1, 2, 3]))
    return Split("toy", split, "imagereward", items, source="toy")


def _top1(ranks, scores, label_0, tie_threshold):
    """1 when the scorer's highest-scored image is one the humans ranked best (a missing or
    tied top score is wrong); one trial per prompt."""
    import numpy as np

    if np.isnan(scores).any():
        return 0.0, 1.0, 1
    top = np.flatnonzero(scores == scores.max())
    return float(len(top) == 1 and ranks[top[0]] == ranks.min()), 1.0, 1


from prefbench.metrics.conventions import Convention  # noqa: E402

TOP1 = Convention("top1", "a plugin's rule: is the top-scored image one the humans ranked best", _top1)
