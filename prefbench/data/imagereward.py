"""ImageReward: the test split's official ``test.json`` plus its image folder, and ImageRewardDB's
per-image metadata for the rating task of ``prefbench train``.

Test layout: ``<data-dir>/test.json`` (list of ``{id, prompt, generations, ranking}``) and the
images unpacked from upstream's ``test_images.zip`` so that
``<data-dir>/test_images/<generation path>`` exists.

Rating layout (:func:`rating_rows`; splits ``train``, ``validation``, ``test``): ImageRewardDB's
metadata files as its dataset repository ships them: ``<data-dir>/metadata-<split>.parquet`` (or
``<split>.parquet``, ``metadata-<split>.json``/``<split>.json`` as a list of rows,
``<split>.jsonl``). Needed columns: ``prompt``, ``image_path`` (relative to the data dir, e.g.
``images/train/train_1/<uuid>.webp`` after unpacking ``images/train/train_1.zip`` there) and
``overall_rating`` (1-7). Optional: ``prompt_id``; an ``image`` column holding the image bytes
(``{"bytes": ...}`` cells) replaces the image files.
"""

from __future__ import annotations

from pathlib import Path

from prefbench.data._io import check_item_id, check_ranks, read_json, require_file
from prefbench.data.model import ImageRef, Item, Split
from prefbench.data.spec import DatasetSpec, Download
from prefbench.errors import DataError
from prefbench.pinned import PinnedFile

#: ImageReward's official test annotation, data/test.json of github.com/THUDM/ImageReward at c1392c6
#: (its size and sha256 read from that commit's file; identical to ../shared/data/imagereward/test.json)
IMAGEREWARD_TEST_JSON = PinnedFile(
    "github:THUDM/ImageReward", ("data/test.json",), revision="c1392c6dd0fd6ecd6d416c96959ab744a6d0a8fb",
    sha256="77cff6c2d0522006f52f0b637ef8302db1782b2b761e378c124a012a3c7fc58e", size=391362, dest="test.json")

SPEC = DatasetSpec(
    "imagereward", ("test",), "imagereward", "prefbench.data.imagereward",
    "ImageReward test: 466 prompts, 2,720 images, human ranks with ties (Xu et al. 2023)",
    # ImageReward's README (c1392c6): data/test.json in the GitHub repository, the images as
    # test_images.zip in the hub model repository THUDM/ImageReward, unpacked to test_images/
    download=Download("THUDM/ImageReward", {"test": ("test_images.zip",)}, archives=("*.zip",), repo_type="model",
                      github={"test": (IMAGEREWARD_TEST_JSON,)},
                      note="test.json from the GitHub repository THUDM/ImageReward at c1392c6 (sha256 checked); "
                           "test_images.zip from the hub model repository, to be unpacked so that "
                           "test_images/<generation path> exists (its member layout is not verified)"),
    rating_rows="prefbench.data.imagereward:rating_rows", rating_scale=(1, 7),
    train_splits={"rating": ("train", "validation", "test")},  # ImageRewardDB's metadata files
)


#: the metadata columns the rating task reads
RATING_COLUMNS = ("prompt", "image_path", "overall_rating")


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


def _metadata_file(data_dir: Path, split: str) -> Path:
    from prefbench.errors import MissingDataError

    names = [f"metadata-{split}.parquet", f"{split}.parquet", f"metadata-{split}.json", f"{split}.json",
             f"{split}.jsonl"]
    for name in names:
        if (data_dir / name).is_file():
            return data_dir / name
    raise MissingDataError(
        f"imagereward: none of {', '.join(names)} in {data_dir}. Provide ImageRewardDB's metadata-{split}.parquet "
        f"(columns {', '.join(RATING_COLUMNS)}) with its images unpacked so that <data-dir>/<image_path> exists. "
        "(No hub is contacted.)"
    )


def rating_rows(split: str, data_dir: Path, rating_min: int, rating_max: int):
    """The rating task's rows: one per metadata row, rated by ``overall_rating``, grouped by
    ``prompt_id`` (else the prompt)."""
    from prefbench.data.ratings import RatingRow, RatingRows, check_rating, read_rows

    path = _metadata_file(data_dir, split)
    rows = read_rows(path)
    if not rows:
        raise DataError("no rows", path)
    have = set(rows[0])
    needed = {"prompt", "overall_rating"} | ({"image_path"} if "image" not in have else set())
    missing = needed - have
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(sorted(missing))}; the rating task needs {', '.join(RATING_COLUMNS)} "
            f"(found: {', '.join(sorted(have))})", path,
        )
    out = []
    for pos, row in enumerate(rows):
        where = f"row {pos}"
        rating = check_rating(row.get("overall_rating"), rating_min, rating_max, path, where)
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
        out.append(RatingRow(group, f"{group}/{pos}", str(row["prompt"]), ref, rating))
    return RatingRows(out, str(path), data_dir)
