"""Pick-a-Pic (Kirstain et al. 2023): parquet rows of two images and a preference label.

Read from ``<data-dir>/<split>.parquet`` or hub-style shards ``<data-dir>/data/<split>-*.parquet``
(sorted by name). Columns used: ``caption``, ``jpg_0``, ``jpg_1`` (encoded image bytes),
``label_0`` (1 = image 0 preferred, 0.5 = tie, 0 = image 1 preferred). Item ids are 0-based row
positions over the concatenated shards.
"""

from __future__ import annotations

from pathlib import Path

from prefbench.data.model import ImageRef, Item, Split
from prefbench.errors import DataError, MissingDataError

LABEL_TO_RANKS = {1.0: [1, 2], 0.5: [1, 1], 0.0: [2, 1]}


def shard_paths(split: str, data_dir: Path) -> list[Path]:
    single = data_dir / f"{split}.parquet"
    if single.is_file():
        return [single]
    shards = sorted((data_dir / "data").glob(f"{split}-*.parquet"))
    if not shards:
        raise MissingDataError(
            f"pickapic: no parquet for split {split!r}: put {single} or shards "
            f"{data_dir / 'data' / (split + '-*.parquet')} there (Pick-a-Pic's parquet files)."
        )
    return shards


def load(split: str, data_dir: Path, with_images: bool = True) -> Split:
    import pyarrow.parquet as pq

    columns = ["caption", "label_0"] + (["jpg_0", "jpg_1"] if with_images else [])
    items: list[Item] = []
    for shard in shard_paths(split, data_dir):
        try:
            table = pq.read_table(shard, columns=columns)
        except Exception as exc:  # pyarrow raises several types for bad files / missing columns
            raise DataError(f"cannot read parquet with columns {columns} ({exc})", shard) from None
        data = table.to_pydict()
        for row in range(table.num_rows):
            pos = len(items)
            label = data["label_0"][row]
            try:
                ranks = LABEL_TO_RANKS[float(label)]
            except (KeyError, TypeError, ValueError):
                raise DataError(f"row {row}: label_0 must be 0, 0.5 or 1, got {label!r}", shard) from None
            if with_images:
                refs = [ImageRef(key=f"{pos}:jpg_{k}", data=data[f"jpg_{k}"][row] or b"") for k in (0, 1)]
            else:
                refs = [ImageRef(key=f"{pos}:jpg_{k}") for k in (0, 1)]
            items.append(Item(str(pos), str(data["caption"][row]), refs, ranks, label_0=float(label)))
    return Split("pickapic", split, "pickapic", items, source=str(data_dir))
