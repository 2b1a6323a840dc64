"""GenAI-Bench, image generation (TIGER-Lab/GenAI-Bench, config ``image_generation``).

Parquet with the published columns ``prompt, left_image, right_image, vote_type`` (images as
``{bytes, path}`` structs or raw bytes), read from ``<data-dir>/<split>.parquet`` or the hub's
shards ``<data-dir>/image_generation/<split>-*.parquet``. ``vote_type`` is one of ``leftvote``,
``rightvote``, ``tievote``, ``bothbad_vote``: ranks [1, 2], [2, 1], [1, 1], [1, 1], the vote
kept as the item's ``label`` (the judge rule tells tie from both-bad). Image 0 is
``left_image``; item ids are 0-based row positions over the shards.
"""

from __future__ import annotations

from pathlib import Path

from prefbench.data._io import image_cell, parquet_files, read_parquet
from prefbench.data.model import ImageRef, Item, Split
from prefbench.data.spec import DatasetSpec, Download
from prefbench.errors import DataError

SPEC = DatasetSpec(
    "genai_bench", ("test_v1",), "tau", "prefbench.data.genai_bench",
    "GenAI-Bench image generation (Jiang et al. 2024): 1,735 votes left / right / tie / both-bad",
    kind="pair", default_split="test_v1",
    download=Download("TIGER-Lab/GenAI-Bench", {"*": ("image_generation/{split}-*.parquet",)}),
)


VOTE_RANKS = {"leftvote": [1, 2], "rightvote": [2, 1], "tievote": [1, 1], "bothbad_vote": [1, 1]}


def load(split: str, data_dir: Path, with_images: bool = True) -> Split:
    files = parquet_files(data_dir, split, "genai_bench", (f"image_generation/{split}-*.parquet",))
    columns = ["prompt", "vote_type"] + (["left_image", "right_image"] if with_images else [])
    items = []
    for path, row, obj in read_parquet(files, columns):
        pos = len(items)
        vote = obj["vote_type"]
        if vote not in VOTE_RANKS:
            raise DataError(f"row {row}: vote_type must be one of {', '.join(VOTE_RANKS)}, got {vote!r}", path)
        if not isinstance(obj["prompt"], str):
            raise DataError(f"row {row}: prompt must be a string, got {obj['prompt']!r}", path)
        if with_images:
            refs = [ImageRef(key=f"{pos}:{c}", data=image_cell(obj[c], path, f"row {row} {c}"))
                    for c in ("left_image", "right_image")]
        else:
            refs = [ImageRef(key=f"{pos}:{c}") for c in ("left_image", "right_image")]
        items.append(Item(str(pos), obj["prompt"], refs, VOTE_RANKS[vote], label=vote))
    return Split("genai_bench", split, "tau", items, source=str(data_dir), root=data_dir)
