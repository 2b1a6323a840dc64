"""HPDv2 in its official layout (Wu et al. 2023, "Human Preference Score v2").

- test: ``<data-dir>/test.json``, a list of ``{prompt, image_path: [...], rank: [...],
  raw_annotations}``; images under ``<data-dir>/test/``. ``rank[i]`` is image i's rank
  (1 = best), as HPSv2's evaluation compares it. Item ids are 0-based positions.
- train: ``<data-dir>/train.json``, ``{prompt, file_path: [...], human_preference: [...]}``
  with 1 marking the preferred image; images under ``<data-dir>/train/``. Each entry becomes
  an item whose preferred image has rank 1 and the others rank 2.
"""

from __future__ import annotations

from pathlib import Path

from prefbench.data._io import check_ranks, read_json, require_file
from prefbench.data.model import ImageRef, Item, Split
from prefbench.data.spec import DatasetSpec, Download
from prefbench.errors import DataError, MissingDataError

SPEC = DatasetSpec(
    "hpdv2", ("test", "train"), "hpdv2", "prefbench.data.hpdv2",
    "HPDv2 test: 400 prompts x 9 images, ranked (Wu et al. 2023); train: preference pairs",
    # HPSv2's README (866735e) links test.json in the dataset repository zhwang/HPDv2; the name
    # of its test image archive is our reading, not verified
    download=Download("zhwang/HPDv2", {"test": ("test.json", "test.tar.gz", "test.zip")},
                      archives=("*.tar.gz", "*.zip"),
                      note="test.json and the test images' archive (unpacked so that test/<image> exists); "
                           "the archive's name is not verified"),
)


def load(split: str, data_dir: Path, with_images: bool = True) -> Split:
    path = require_file(
        data_dir / f"{split}.json", "hpdv2",
        f"Provide HPDv2's {split}.json in {data_dir} and its images under {data_dir / split}/ "
        "(the dataset repository ships them as an archive: unpack it there).",
    )
    raw = read_json(path)
    if not isinstance(raw, list):
        raise DataError("expected a JSON list of items", path)
    image_root = data_dir / split
    if with_images and not image_root.is_dir():
        raise MissingDataError(f"hpdv2: image folder {image_root} not found; unpack the {split} images there.")
    items = []
    for pos, obj in enumerate(raw):
        where = f"item {pos}"
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected an object", path)
        if split == "train":
            paths, pref = obj.get("file_path"), obj.get("human_preference")
            if not isinstance(paths, list) or not isinstance(pref, list) or len(paths) != len(pref) or not paths:
                raise DataError(f"{where}: needs 'file_path' and 'human_preference' lists of equal length", path)
            ranks = [1 if p == 1 else 2 for p in pref]
        else:
            paths = obj.get("image_path")
            if not isinstance(paths, list) or not paths:
                raise DataError(f"{where}: needs a non-empty 'image_path' list", path)
            ranks = check_ranks(obj.get("rank"), len(paths), path, where)
        if "prompt" not in obj:
            raise DataError(f"{where}: missing 'prompt'", path)
        refs = [ImageRef(key=str(p), path=image_root / str(p)) for p in paths]
        meta = {"raw_annotations": obj["raw_annotations"]} if "raw_annotations" in obj else {}
        items.append(Item(item_id=str(pos), prompt=str(obj["prompt"]), images=refs, ranks=ranks, meta=meta))
    return Split("hpdv2", split, "hpdv2", items, source=str(path), root=data_dir)
