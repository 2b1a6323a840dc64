"""Third-party datasets, declared under the ``prefbench.datasets`` entry-point group: each a
:class:`DatasetSpec` naming this module (whose ``load`` builds the split) or one of its functions
(``"module:function"``, so one module serves several datasets).

``toy``: 6 prompts x 3 solid-colour images made in memory (no data dir); the human ranking
prefers the redder image, so a scorer that reads redness would be perfect.

``toy_points``: pointwise, like EvalMuse: 4 prompts x 4 images, each with a human score (1-5,
higher = redder) and element labels, scored by SRCC; its own rating reader trains the rating task.

``toy_pairs``: pairs with a GenAI-Bench-style vote as the item's ``label`` (left, right, tie,
both bad), scored by the tie-calibrated ``tau``; the pairwise task trains on its untied pairs.
"""

import io

from prefbench.data import DatasetSpec
from prefbench.data.model import ImageRef, Item, Split

SPEC = DatasetSpec("toy", ("test",), "imagereward", "prefbench_example_plugin.toy",
                   "a toy dataset from a plugin: 6 prompts x 3 solid colours", needs_data_dir=False)
POINTS = DatasetSpec("toy_points", ("train", "test"), "srcc", "prefbench_example_plugin.toy:load_points",
                     "a pointwise toy dataset from a plugin: human scores and element labels per image",
                     needs_data_dir=False, kind="pointwise",
                     rating_rows="prefbench_example_plugin.toy:points_rating_rows")
PAIRS = DatasetSpec("toy_pairs", ("test",), "tau", "prefbench_example_plugin.toy:load_pairs",
                    "a pair toy dataset from a plugin: votes left / right / tie / both-bad", needs_data_dir=False,
                    kind="pair")
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


def _ranks(human):
    levels = sorted(set(human), reverse=True)
    return [float(levels.index(h) + 1) for h in human]


def load_points(split, data_dir=None, with_images=True):
    items = []
    for p in range(4):
        human = [5.0 - k - (p % 2) * 0.5 for k in range(4)]  # 5, 4, 3, 2 or 4.5, 3.5, 2.5, 1.5
        refs = [ImageRef(f"points/{split}/{p}_{k}.png", data=_png((250 - 50 * k, 40, 40)) if with_images else None)
                for k in range(4)]
        elements = [{f"red (attribute)#{p}": float(k < 2), f"square (object)#{p}": 1.0} for k in range(4)]
        items.append(Item(f"{split}-{p}", f"a red square, take {p}", refs, _ranks(human), human=human,
                          elements=elements))
    return Split("toy_points", split, "srcc", items, source="toy_points")


def points_rating_rows(split, data_dir, rating_min, rating_max):
    """The rating task's rows: each image's human score rounded into the scale (prefbench's helper)."""
    from prefbench.data.ratings import from_human

    return from_human(load_points(split, data_dir), rating_min, rating_max)


VOTE_RANKS = {"leftvote": [1, 2], "rightvote": [2, 1], "tievote": [1, 1], "bothbad_vote": [1, 1]}


def load_pairs(split, data_dir=None, with_images=True):
    items = []
    for p, vote in enumerate(["leftvote", "rightvote", "tievote", "bothbad_vote", "leftvote", "rightvote"]):
        reds = [200, 120] if vote == "leftvote" else [120, 200]
        refs = [ImageRef(f"pairs/{p}_{k}.png", data=_png((r, 40, 40)) if with_images else None)
                for k, r in enumerate(reds)]
        items.append(Item(str(p), f"a red square, pair {p}", refs, VOTE_RANKS[vote], label=vote))
    return Split("toy_pairs", split, "tau", items, source="toy_pairs")


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
