"""Pick-a-Pic (Kirstain et al. 2023): parquet rows of two images and a preference label.

Read from ``<data-dir>/<split>.parquet`` or hub-style shards ``<data-dir>/data/<split>-*.parquet``
(sorted by name). Columns used: ``caption``, ``jpg_0``, ``jpg_1`` (encoded image bytes),
``label_0`` (1 = image 0 preferred, 0.5 = tie, 0 = image 1 preferred). Item ids are 0-based row
positions over the concatenated shards.
"""

from __future__ import annotations

from pathlib import Path

from prefbench.data._io import parquet_files, read_parquet
from prefbench.data.model import ImageRef, Item, Split
from prefbench.data.spec import DatasetSpec, Download
from prefbench.errors import DataError

SPEC = DatasetSpec(
    "pickapic", ("test", "test_unique", "validation_unique"), "pickapic", "prefbench.data.pickapic",
    "Pick-a-Pic: image pairs with label_0 in {0, 0.5, 1} (Kirstain et al. 2023)", kind="pair",
    # PickScore (f79607f) evaluates yuvalkirstain/pickapic_v1's test_unique / validation_unique;
    # the shard names are the hub's parquet layout, not verified
    download=Download("yuvalkirstain/pickapic_v1", {"*": ("data/{split}-*.parquet",)},
                      note="the split's parquet shards, images inside (the full test split is large)"),
)


LABEL_TO_RANKS = {1.0: [1, 2], 0.5: [1, 1], 0.0: [2, 1]}


def load(split: str, data_dir: Path, with_images: bool = True) -> Split:
    columns = ["caption", "label_0"] + (["jpg_0", "jpg_1"] if with_images else [])
    files = parquet_files(data_dir, split, "pickapic", (f"data/{split}-*.parquet",))
    items: list[Item] = []
    for shard, row, obj in read_parquet(files, columns):
        pos = len(items)
        label = obj["label_0"]
        try:
            ranks = LABEL_TO_RANKS[float(label)]
        except (KeyError, TypeError, ValueError):
            raise DataError(f"row {row}: label_0 must be 0, 0.5 or 1, got {label!r}", shard) from None
        if with_images:
            refs = [ImageRef(key=f"{pos}:jpg_{k}", data=obj[f"jpg_{k}"] or b"") for k in (0, 1)]
        else:
            refs = [ImageRef(key=f"{pos}:jpg_{k}") for k in (0, 1)]
        items.append(Item(str(pos), str(obj["caption"]), refs, ranks, label_0=float(label)))
    return Split("pickapic", split, "pickapic", items, source=str(data_dir))
