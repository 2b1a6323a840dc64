"""Per-image ratings for the rating task of ``prefbench train``: the reader contract and shared helpers.

A dataset that can train the rating task names a reader in its :class:`~prefbench.data.DatasetSpec`
(``rating_rows="module:function"``, imported only when the trainer needs it)::

    def rating_rows(split: str, data_dir: Path | None, rating_min: int, rating_max: int) -> RatingRows

The reader lives next to its dataset's loader: ImageRewardDB's metadata in
``prefbench.data.imagereward``, prefbench's rating lines in ``prefbench.data.jsonl``, the demo
world's quantile bins in ``prefbench.data.demo``, and the human scores of the pointwise sets
(``evalmuse``, ``genai_rank``) through :func:`from_human`. The trainer checks the split and the data
dir against the spec before it calls the reader, and every rating against the scale after.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

from prefbench.data.model import ImageRef, Split
from prefbench.errors import DataError


class RatingRow(NamedTuple):
    """One rated image: one example of the rating task."""

    #: the prompt it belongs to: ``--fraction`` keeps or drops whole groups
    group: str
    #: unique among the rows; recorded in the task's content hash
    example_id: str
    prompt: str
    image: ImageRef
    #: an integer on rating_min..rating_max
    rating: int


class RatingRows(NamedTuple):
    """What a reader returns (a plain ``(rows, source, root)`` tuple is accepted too)."""

    rows: list[RatingRow]
    #: the file or folder read (recorded in ``prefbench_train.json``)
    source: str
    #: the folder every image path must resolve inside (None: not confined)
    root: Path | None


def scale_rating(score: float, rating_min: int, rating_max: int) -> int:
    """A human score as a rating: the nearest integer (a half rounds up), clamped into the scale.

    >>> [scale_rating(s, 1, 5) for s in (1.0, 1.49, 2.5, 3.333, 4.667, 5.0)]
    [1, 1, 3, 3, 5, 5]
    >>> scale_rating(4.6, 1, 3), scale_rating(0.2, 1, 7)
    (3, 1)
    """
    return int(min(rating_max, max(rating_min, math.floor(score + 0.5))))


def from_human(split: Split, rating_min: int, rating_max: int) -> RatingRows:
    """Rows from the items' human scores (``Item.human``), each mapped by :func:`scale_rating`.

    One row per image, grouped by item, ids ``<item id>/<image index>``. A split whose items have
    no human scores (EvalMuse's public test file withholds them) is a DataError."""
    rows = []
    for item in split.items:
        if item.human is None:
            why = f" ({split.note})" if split.note else ""
            raise DataError(f"{split.dataset}/{split.split}: item {item.item_id} has no human scores to rate "
                            f"from{why}", split.source or None)
        for k, (ref, score) in enumerate(zip(item.images, item.human, strict=True)):
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
                raise DataError(f"{split.dataset}/{split.split}: item {item.item_id} image {k}: human score "
                                f"{score!r} is not a finite number", split.source or None)
            rows.append(RatingRow(item.item_id, f"{item.item_id}/{k}", item.prompt, ref,
                                  scale_rating(float(score), rating_min, rating_max)))
    return RatingRows(rows, split.source, split.root)


def check_rating(value: Any, lo: int, hi: int, path: Path | None, where: str) -> int:
    """A rating read from a file: an integral number on lo..hi (a DataError naming file and row)."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"{where}: rating {value!r} is not a number", path)
    if not math.isfinite(float(value)) or float(value) != int(value) or not lo <= int(value) <= hi:
        raise DataError(f"{where}: rating {value!r} is not an integer in {lo}..{hi}", path)
    return int(value)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """A table of row objects: parquet, JSONL, or a JSON list."""
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
