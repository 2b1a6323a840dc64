"""Your own data: one JSON object per line.

``--data-dir`` is either the JSONL file itself or a folder holding ``<split>.jsonl``. Each line::

    {"prompt_id": "p1", "prompt": "a red cube", "images": ["img/p1_0.png", "img/p1_1.png"], "ranks": [1, 2]}

Image paths are relative to the JSONL file's folder; an absolute path, or one that resolves
outside that folder, is not read unless `--allow-outside-data-dir` is given. Ranks: 1 = best,
equal numbers are ties. Items are scored with the ImageReward convention unless ``--convention``
says otherwise.
"""

from __future__ import annotations

from pathlib import Path

from prefbench.data._io import check_item_id, check_ranks, read_jsonl, require_file
from prefbench.data.model import ImageRef, Item, Split
from prefbench.errors import DataError


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
