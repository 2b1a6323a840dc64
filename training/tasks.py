"""Task builders: turn preference data into GRPO examples (one prompt, its images, a target).

``rating``: one image, its prompt and a target rating on ``rating_min..rating_max``.
Sources (``--dataset``):

* ``imagereward`` (split ``train``, ``validation``): ImageRewardDB's metadata files as its
  dataset repository ships them: ``<data-dir>/metadata-<split>.parquet`` (or ``<split>.parquet``,
  ``metadata-<split>.json``/``<split>.json`` as a list of rows, ``<split>.jsonl``). Needed
  columns: ``prompt``, ``image_path`` (relative to the data dir, e.g.
  ``images/train/train_1/<uuid>.webp`` after unpacking ``images/train/train_1.zip`` there) and
  ``overall_rating`` (1-7). Optional: ``prompt_id``; an ``image`` column holding the image
  bytes (``{"bytes": ...}`` cells) replaces the image files.
* ``jsonl``: ``--data-dir`` is a JSONL file (or a folder with ``<split>.jsonl``), one
  ``{"prompt": ..., "image": "path", "rating": 4}`` per line; ``prompt_id`` optional; image
  paths relative to the file.
* ``demo``: the synthetic shapes world, whose images carry a latent utility (higher = better;
  ``prefbench.data.demo``). The target rating is the utility's quantile bin over all images of
  the split: K = rating_max - rating_min + 1 equal-count bins, the lowest bin rated
  ``rating_min``. Deterministic given the split, independent of the utility's units, and it
  uses the whole scale.

``pairwise``: two images of one prompt with different human ranks, shown as (anchor,
candidate) = (Image 1, Image 2) of the scorers' pairwise template; target ``1`` when the
candidate is preferred, ``0`` when the anchor is. Which
image goes first is drawn per pair from ``numpy.random.default_rng(seed)``, so targets are
balanced. Sources: any dataset ``prefbench.data.load_dataset`` reads that has ranks (HPDv2
``train``: the preferred image vs each other one; ``jsonl`` in prefbench's ranked form;
``demo``; ...): every untied pair of an item becomes one example.

``--fraction F --seed S`` keeps a seeded random subset of the source's items (prompts), in
their original order, before pairs or images are expanded; the paper trains on ~25% of HPDv2.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prefbench.data.model import ImageRef
from prefbench.errors import DataError, MissingDataError, UsageError

IMAGEREWARD_COLUMNS = ("prompt", "image_path", "overall_rating")


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


def quantile_ratings(utilities: Sequence[float], rating_min: int, rating_max: int) -> list[int]:
    """Ratings from latent utilities: equal-count quantile bins, lowest bin = ``rating_min``.

    >>> quantile_ratings([0.0, -1.0, -2.0, -3.0, -0.5, -2.5], 1, 3)
    [3, 2, 2, 1, 3, 1]
    """
    u = np.asarray(utilities, dtype=float)
    k = rating_max - rating_min + 1
    edges = np.quantile(u, np.linspace(0, 1, k + 1)[1:-1])
    return [int(rating_min + b) for b in np.searchsorted(edges, u, side="right")]


# -- rating ---------------------------------------------------------------------------------
def _check_rating(value: Any, lo: int, hi: int, path: Path, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"{where}: rating {value!r} is not a number", path)
    if float(value) != int(value) or not lo <= int(value) <= hi:
        raise DataError(f"{where}: rating {value!r} is not an integer in {lo}..{hi}", path)
    return int(value)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(f"cannot read parquet ({exc})", path) from None
    if path.suffix == ".jsonl":
        from prefbench.data._io import read_jsonl

        return [row for _, row in read_jsonl(path)]
    from prefbench.data._io import read_json

    rows = read_json(path)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataError("expected a JSON list of row objects", path)
    return rows


def _imagereward_file(data_dir: Path, split: str) -> Path:
    names = [f"metadata-{split}.parquet", f"{split}.parquet", f"metadata-{split}.json", f"{split}.json",
             f"{split}.jsonl"]
    for name in names:
        if (data_dir / name).is_file():
            return data_dir / name
    raise MissingDataError(
        f"imagereward: none of {', '.join(names)} in {data_dir}. Provide ImageRewardDB's metadata-{split}.parquet "
        f"(columns {', '.join(IMAGEREWARD_COLUMNS)}) with its images unpacked so that <data-dir>/<image_path> exists. "
        "(No hub is contacted.)"
    )


def _imagereward_rating_rows(data_dir: Path, split: str, lo: int, hi: int):
    path = _imagereward_file(data_dir, split)
    rows = _read_rows(path)
    if not rows:
        raise DataError("no rows", path)
    have = set(rows[0])
    needed = {"prompt", "overall_rating"} | ({"image_path"} if "image" not in have else set())
    missing = needed - have
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(sorted(missing))}; the rating task needs {', '.join(IMAGEREWARD_COLUMNS)} "
            f"(found: {', '.join(sorted(have))})", path,
        )
    out = []
    for pos, row in enumerate(rows):
        where = f"row {pos}"
        rating = _check_rating(row.get("overall_rating"), lo, hi, path, where)
        cell = row.get("image")
        if isinstance(cell, dict) and cell.get("bytes"):
            ref = ImageRef(key=str(row.get("image_path") or f"{path.name}:{pos}"), data=cell["bytes"])
        elif isinstance(cell, (bytes, bytearray)):
            ref = ImageRef(key=str(row.get("image_path") or f"{path.name}:{pos}"), data=bytes(cell))
        else:
            rel = row.get("image_path")
            if not isinstance(rel, str) or not rel:
                raise DataError(f"{where}: 'image_path' must be a non-empty string", path)
            ref = ImageRef(key=rel, path=data_dir / rel)
        group = str(row.get("prompt_id", row["prompt"]))
        out.append((group, f"{group}/{pos}", str(row["prompt"]), ref, rating))
    return out, str(path), data_dir


def _jsonl_rating_rows(data_dir: Path, split: str, lo: int, hi: int):
    from prefbench.data._io import read_jsonl
    from prefbench.data.jsonl import resolve

    path = resolve(split, data_dir)
    out = []
    for lineno, obj in read_jsonl(path):
        rating = obj.get("rating", obj.get("overall_rating"))
        missing = [k for k, ok in (("prompt", "prompt" in obj), ("image", "image" in obj), ("rating", rating is not None))
                   if not ok]
        if missing:
            raise DataError(f"missing key(s) {', '.join(missing)}; the rating task needs one "
                            '{"prompt": ..., "image": "path", "rating": N} per line', path, lineno)
        rating = _check_rating(rating, lo, hi, path, f"line {lineno}")
        img = obj["image"]
        if not isinstance(img, str) or not img:
            raise DataError("'image' must be a path", path, lineno)
        ref = ImageRef(key=img, path=(path.parent / img) if not Path(img).is_absolute() else Path(img))
        group = str(obj.get("prompt_id", obj["prompt"]))
        out.append((group, f"{group}/{lineno}", str(obj["prompt"]), ref, rating))
    return out, str(path), path.parent


def _demo_rating_rows(split: str, lo: int, hi: int):
    from prefbench.data import load_dataset

    data = load_dataset("demo", split)
    ratings = iter(quantile_ratings([u for item in data.items for u in item.meta["utility"]], lo, hi))
    out = []
    for item in data.items:
        for k, ref in enumerate(item.images):
            out.append((item.item_id, f"{item.item_id}/{k}", item.prompt, ref, next(ratings)))
    return out, data.source, data.root


def build_rating(dataset: str, split: str = "train", data_dir: str | Path | None = None, *, rating_min: int = 1,
                 rating_max: int = 7, fraction: float = 1.0, seed: int = 0, limit: int | None = None,
                 allow_outside_data_dir: bool = False) -> TaskData:
    """Rating examples from ``dataset`` (``imagereward``, ``jsonl`` or ``demo``)."""
    if dataset == "demo":
        rows, source, root = _demo_rating_rows(split, rating_min, rating_max)
    elif dataset in ("imagereward", "jsonl"):
        if data_dir is None:
            raise UsageError(f"dataset {dataset!r} needs --data-dir")
        reader = _imagereward_rating_rows if dataset == "imagereward" else _jsonl_rating_rows
        rows, source, root = reader(Path(data_dir), split, rating_min, rating_max)
    else:
        raise UsageError(
            f"the rating task reads per-image ratings, which dataset {dataset!r} does not have; "
            "use imagereward (ImageRewardDB metadata with overall_rating), jsonl (prompt/image/rating lines) or demo"
        )
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
    if dataset == "jsonl":  # prefbench's ranked JSONL form; any split name (the registry lists only test)
        from prefbench.data import jsonl

        if data_dir is None:
            raise UsageError("dataset 'jsonl' needs --data-dir")
        data = jsonl.load(split, Path(data_dir))
    else:
        from prefbench.data import load_dataset

        data = load_dataset(dataset, split, data_dir, allow_outside_data_dir=True)  # checked in _checked
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
