"""Your own data: one JSON object per line.

``--data-dir`` is either the JSONL file itself or a folder holding ``<split>.jsonl``. Each line::

    {"prompt_id": "p1", "prompt": "a red cube", "images": ["img/p1_0.png", "img/p1_1.png"], "ranks": [1, 2]}

Image paths are relative to the JSONL file's folder; an absolute path, or one that resolves
outside that folder, is not read unless `--allow-outside-data-dir` is given. Ranks: 1 = best,
equal numbers are ties. Items are scored with the ImageReward convention unless ``--convention``
says otherwise.

The rating task of ``prefbench train`` reads another form (:func:`rating_rows`): one
``{"prompt": ..., "image": "path", "rating": 4}`` per line, ``prompt_id`` optional, image paths
relative to the file. Training accepts any split name (the file is the one you name).
"""

from __future__ import annotations

from pathlib import Path

from prefbench.data._io import check_item_id, check_ranks, read_jsonl, require_file
from prefbench.data.model import ImageRef, Item, Split
from prefbench.data.spec import DatasetSpec
from prefbench.errors import DataError

SPEC = DatasetSpec(
    "jsonl", ("test",), "imagereward", "prefbench.data.jsonl",
    "your own data: one JSON object per line (see docs/datasets.md, 'Your own data')",
    rating_rows="prefbench.data.jsonl:rating_rows", train_splits={"rating": ("*",), "pairwise": ("*",)},
)


def resolve(split: str, data_dir: Path) -> Path:
    if data_dir.suffix == ".jsonl":
        return require_file(data_dir, "jsonl", "Give the JSONL file or a folder holding <split>.jsonl.")
    return require_file(data_dir / f"{split}.jsonl", "jsonl", "Give the JSONL file or a folder holding <split>.jsonl.")


def load(split: str, data_dir: Path, with_images: bool = True) -> Split:
    path = resolve(split, data_dir)
    root = path.parent
    items, seen = [], {}
    for lineno, obj in read_jsonl(path):
        missing = {"prompt_id", "prompt", "images", "ranks"} - obj.keys()
        if missing:
            raise DataError(f"missing key(s) {', '.join(sorted(missing))}", path, lineno)
        pid = check_item_id(obj["prompt_id"], seen, path, f"prompt_id {obj['prompt_id']!r}", "prompt_id", lineno)
        images = obj["images"]
        if not isinstance(images, list) or len(images) < 2 or not all(isinstance(p, str) for p in images):
            raise DataError("'images' must be a list of at least 2 paths", path, lineno)
        ranks = check_ranks(obj["ranks"], len(images), path, f"prompt_id {pid}", lineno)
        refs = [ImageRef(key=p, path=(root / p) if not Path(p).is_absolute() else Path(p)) for p in images]
        items.append(Item(pid, str(obj["prompt"]), refs, ranks))
    if not items:
        raise DataError("no items", path)
    return Split("jsonl", split, "imagereward", items, source=str(path), root=root)


def rating_rows(split: str, data_dir: Path, rating_min: int, rating_max: int):
    """The rating task's rows: one per line, grouped by ``prompt_id`` (else the prompt)."""
    from prefbench.data.ratings import RatingRow, RatingRows, check_rating

    path = resolve(split, data_dir)
    out = []
    for lineno, obj in read_jsonl(path):
        rating = obj.get("rating", obj.get("overall_rating"))
        missing = [k for k, ok in (("prompt", "prompt" in obj), ("image", "image" in obj), ("rating", rating is not None))
                   if not ok]
        if missing:
            raise DataError(f"missing key(s) {', '.join(missing)}; the rating task needs one "
                            '{"prompt": ..., "image": "path", "rating": N} per line', path, lineno)
        rating = check_rating(rating, rating_min, rating_max, path, f"line {lineno}")
        img = obj["image"]
        if not isinstance(img, str) or not img:
            raise DataError("'image' must be a path", path, lineno)
        ref = ImageRef(key=img, path=(path.parent / img) if not Path(img).is_absolute() else Path(img))
        group = str(obj.get("prompt_id", obj["prompt"]))
        out.append(RatingRow(group, f"{group}/{lineno}", str(obj["prompt"]), ref, rating))
    return RatingRows(out, str(path), path.parent)
