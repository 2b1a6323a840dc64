"""Task builders: turn preference data into GRPO examples (one prompt, its images, a target).

Datasets are read through the dataset registry alone (:mod:`prefbench.data`): its
:class:`~prefbench.data.DatasetSpec` says whether a dataset may train at all (``trainable``, with
``train_note`` as the reason, e.g. MMRB2's evaluation-only licence), which splits each task reads
(``train_splits``; ``"*"`` = any split name) and which reader gives the rating task its ratings
(``rating_rows``). No dataset is named here; a dataset plugin trains like a built-in.

``rating``: one image, its prompt and a target rating on ``rating_min..rating_max``, from the
dataset's rating reader (:mod:`prefbench.data.ratings`): ImageRewardDB's ``overall_rating``
(``imagereward``), prefbench's rating lines (``jsonl``), the demo world's utility quantile bins
(``demo``), the human scores of the pointwise sets rounded into the scale (``evalmuse``,
``genai_rank``), or a plugin's own.

``pairwise``: two images of one prompt with different human ranks, shown as (anchor,
candidate) = (Image 1, Image 2) of the scorers' pairwise template; target ``1`` when the
candidate is preferred, ``0`` when the anchor is. Which
image goes first is drawn per pair from ``numpy.random.default_rng(seed)``, so targets are
balanced. Sources: any dataset ``prefbench.data.load_dataset`` reads that has ranks (HPDv2
``train``: the preferred image vs each other one; HPDv3 and GenAI-Bench pairs, human ties
skipped; ``jsonl`` in prefbench's ranked form; ``demo``; ...): every untied pair of an item
becomes one example.

``--fraction F --seed S`` keeps a seeded random subset of the source's items (prompts), in
their original order, before pairs or images are expanded; the paper trains on ~25% of HPDv2.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prefbench.data.model import ImageRef
from prefbench.errors import DataError, UsageError


@dataclass
class Example:
    """One GRPO prompt: its text prompt, its images (in prompt order) and the correct answer."""

    example_id: str
    prompt: str
    images: list[ImageRef]
    target: int
    choices: list[int]


@dataclass
class TaskData:
    """The examples of one task plus what identifies them (for ``prefbench_train.json``)."""

    task: str
    dataset: str
    split: str
    examples: list[Example]
    n_source_items: int
    n_items_used: int
    source: str = ""
    rating_scale: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the data dir every image path must resolve inside (None: not confined)
    root: Path | None = None

    def content_hash(self) -> str:
        """sha256 over every example's id, prompt, image keys and target, in order."""
        h = hashlib.sha256()
        for ex in self.examples:
            rec = {"id": ex.example_id, "prompt": ex.prompt, "images": [r.key for r in ex.images], "target": ex.target}
            h.update(json.dumps(rec, sort_keys=True, ensure_ascii=False).encode())
            h.update(b"\n")
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        from prefbench.data import dataset_info

        source = self.source  # a generated dataset (no data dir) is named by its folder, not its path
        if source and not dataset_info(self.dataset).needs_data_dir:
            source = Path(source).name
        return {
            "task": self.task, "dataset": self.dataset, "split": self.split, "source": source,
            "n_source_items": self.n_source_items, "n_items_used": self.n_items_used,
            "n_examples": len(self.examples), "content_hash": self.content_hash(),
            "targets": {str(k): v for k, v in sorted(Counter(ex.target for ex in self.examples).items())},
            "rating_scale": list(self.rating_scale) if self.rating_scale else None, **self.extra,
        }


def subset_indices(n: int, fraction: float, seed: int) -> list[int]:
    """A seeded subset of ``ceil(fraction * n)`` positions out of ``n``, in increasing order.

    >>> subset_indices(8, 0.25, seed=0) == subset_indices(8, 0.25, seed=0)
    True
    >>> len(subset_indices(8, 0.25, seed=0)), subset_indices(5, 1.0, seed=3)
    (2, [0, 1, 2, 3, 4])
    """
    if fraction >= 1.0:
        return list(range(n))
    k = max(1, math.ceil(fraction * n)) if n else 0
    rng = np.random.default_rng([seed, 0x5EB5E7])
    return sorted(int(i) for i in rng.permutation(n)[:k])


# -- rating ---------------------------------------------------------------------------------
def build_rating(dataset: str, split: str = "train", data_dir: str | Path | None = None, *, rating_min: int = 1,
                 rating_max: int = 7, fraction: float = 1.0, seed: int = 0, limit: int | None = None,
                 allow_outside_data_dir: bool = False) -> TaskData:
    """Rating examples from ``dataset``'s rating reader (its spec's ``rating_rows``)."""
    from prefbench.data import training_spec

    spec = training_spec(dataset, "rating", split, data_dir)
    rows, source, root = spec.rating_reader()(split, Path(data_dir) if data_dir is not None else None,
                                              rating_min, rating_max)
    rows = [_checked_row(row, rating_min, rating_max, dataset, split) for row in rows]
    # the subset is drawn over prompts, not images, so that one prompt's images stay together
    groups = list(dict.fromkeys(g for g, *_ in rows))
    keep = {groups[i] for i in subset_indices(len(groups), fraction, seed)}
    choices = list(range(rating_min, rating_max + 1))
    examples = [Example(eid, prompt, [ref], rating, choices)
                for g, eid, prompt, ref, rating in rows if g in keep]
    if limit is not None:
        examples = examples[:limit]
    return _checked(TaskData("rating", dataset, split, examples, len(groups), len(keep), source,
                             rating_scale=(rating_min, rating_max), root=root), allow_outside_data_dir)


# -- pairwise -------------------------------------------------------------------------------
def build_pairwise(dataset: str, split: str = "train", data_dir: str | Path | None = None, *,
                   fraction: float = 1.0, seed: int = 0, limit: int | None = None,
                   allow_outside_data_dir: bool = False) -> TaskData:
    """(anchor, candidate) examples from every untied pair of each item of ``dataset``."""
    from prefbench.data import load_dataset

    data = load_dataset(dataset, split, data_dir, allow_outside_data_dir=True, task="pairwise")  # checked in _checked
    items = [data.items[i] for i in subset_indices(len(data.items), fraction, seed)]
    rng = np.random.default_rng([seed, 0xA1C40])
    examples = []
    for item in items:
        for i in range(item.n_images):
            for j in range(i + 1, item.n_images):
                if item.ranks[i] == item.ranks[j]:
                    continue
                better, worse = (i, j) if item.ranks[i] < item.ranks[j] else (j, i)
                candidate_better = bool(rng.integers(2))
                anchor, candidate = (worse, better) if candidate_better else (better, worse)
                examples.append(Example(f"{item.item_id}/{anchor}-{candidate}", item.prompt,
                                        [item.images[anchor], item.images[candidate]],
                                        1 if candidate_better else 0, [0, 1]))
    if limit is not None:
        examples = examples[:limit]
    return _checked(TaskData("pairwise", dataset, split, examples, len(data.items), len(items), data.source,
                             root=data.root), allow_outside_data_dir)


def _checked_row(row, lo: int, hi: int, dataset: str, split: str):
    """One row of a rating reader (a plugin's too): five fields, an integer rating in the scale."""
    try:
        group, eid, prompt, ref, rating = row
    except (TypeError, ValueError):
        raise DataError(f"{dataset}/{split}: the rating reader gave {row!r}"[:200] + "; expected rows of "
                        "(group, example_id, prompt, image, rating)") from None
    if not isinstance(ref, ImageRef):
        raise DataError(f"{dataset}/{split}: example {eid}: the image is a {type(ref).__name__}, not an ImageRef")
    if isinstance(rating, bool) or not isinstance(rating, (int, np.integer)) or not lo <= int(rating) <= hi:
        raise DataError(f"{dataset}/{split}: example {eid}: rating {rating!r} is not an integer in {lo}..{hi}")
    return str(group), str(eid), str(prompt), ref, int(rating)


def _checked(data: TaskData, allow_outside_data_dir: bool = False) -> TaskData:
    """Refuse an empty task, and every image file that cannot be read safely, up front.

    A training set cannot mark one image as failed the way a run does, so an image path that
    resolves outside the data dir (unless allowed), is missing, is not a regular file or is too
    large stops the build with a message naming it. Outside paths are never opened.
    """
    from dataclasses import replace

    from prefbench.data.images import open_image_file
    from prefbench.errors import ImageError

    if not data.examples:
        what = "untied image pairs" if data.task == "pairwise" else "rated images"
        raise DataError(f"{data.dataset}/{data.split}: no {what} to train on "
                        f"({data.n_items_used} of {data.n_source_items} items kept)", data.source or None)
    root = None if allow_outside_data_dir else data.root
    bad: dict[str, str] = {}
    checked: dict[Path, Any] = {}
    for n, ex in enumerate(data.examples):
        refs = []
        for ref in ex.images:
            if ref.path is not None:
                if ref.path not in checked:
                    try:
                        open_image_file(ref.path, root).close()
                    except ImageError as exc:
                        bad[str(ref.path)] = str(exc)
                    checked[ref.path] = replace(ref, root=root)
                ref = checked[ref.path]
            refs.append(ref)
        data.examples[n] = replace(ex, images=refs)
    if bad:
        shown = "; ".join(list(bad.values())[:3])
        raise DataError(f"{data.dataset}/{data.split}: {len(bad)} of {len(checked)} training images cannot be "
                        f"used ({shown}{'; ...' if len(bad) > 3 else ''})", data.source or None)
    return data


def build_task(task: str, dataset: str, split: str = "train", data_dir: str | Path | None = None, *,
               rating_min: int = 1, rating_max: int = 7, fraction: float = 1.0, seed: int = 0,
               limit: int | None = None, allow_outside_data_dir: bool = False) -> TaskData:
    if task == "rating":
        return build_rating(dataset, split, data_dir, rating_min=rating_min, rating_max=rating_max,
                            fraction=fraction, seed=seed, limit=limit, allow_outside_data_dir=allow_outside_data_dir)
    if task == "pairwise":
        return build_pairwise(dataset, split, data_dir, fraction=fraction, seed=seed, limit=limit,
                              allow_outside_data_dir=allow_outside_data_dir)
    raise UsageError(f"unknown task {task!r}; tasks: rating, pairwise")
