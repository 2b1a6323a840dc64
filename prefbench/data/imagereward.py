"""ImageReward test split: the official ``test.json`` plus its image folder.

Layout: ``<data-dir>/test.json`` (list of ``{id, prompt, generations, ranking}``) and the
images unpacked from upstream's ``test_images.zip`` so that
``<data-dir>/test_images/<generation path>`` exists.
"""

from __future__ import annotations

from pathlib import Path

from prefbench.data._io import check_item_id, check_ranks, read_json, require_file
from prefbench.data.model import ImageRef, Item, Split
from prefbench.errors import DataError


def load(split: str, data_dir: Path, with_images: bool = True) -> Split:
    path = require_file(
        data_dir / f"{split}.json", "imagereward",
        f"Provide the official ImageReward annotation ({split}.json, from the ImageReward repository's "
        f"data/ folder) in {data_dir}, with images unpacked under {data_dir / (split + '_images')}/.",
    )
    raw = read_json(path)
    if not isinstance(raw, list):
        raise DataError("expected a JSON list of items", path)
    image_root = data_dir / f"{split}_images"
    if with_images and not image_root.is_dir():
        from prefbench.errors import MissingDataError

        raise MissingDataError(
            f"imagereward: image folder {image_root} not found. Unpack upstream's {split}_images.zip there "
            f"so that {image_root}/<generation path> exists."
        )
    items, seen = [], {}
    for pos, obj in enumerate(raw):
        where = f"item {pos}"
        if not isinstance(obj, dict) or not {"id", "prompt", "generations", "ranking"} <= obj.keys():
            raise DataError(f"{where}: needs keys id, prompt, generations, ranking", path)
        gens = obj["generations"]
        if not isinstance(gens, list) or not gens or not all(isinstance(g, str) for g in gens):
            raise DataError(f"{where}: 'generations' must be a non-empty list of paths", path)
        ranks = check_ranks(obj["ranking"], len(gens), path, where)
        refs = [ImageRef(key=g, path=image_root / g) for g in gens]
        item_id = check_item_id(obj["id"], seen, path, where, "id")
        items.append(Item(item_id=item_id, prompt=str(obj["prompt"]), images=refs, ranks=ranks))
    return Split("imagereward", split, "imagereward", items, source=str(path), root=data_dir)
