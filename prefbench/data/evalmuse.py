"""EvalMuse-40K (DY-Evalab/EvalMuse), pointwise text-image alignment.

``<data-dir>/<split>.json`` (the hub's ``train_list.json`` is accepted for ``train``): a list of
``{prompt_id, prompt, img_path, total_score, element_score: {element: 0/1}, type, ...}`` with
``img_path`` relative to the data dir. ``total_score`` is the human score (1-5) and each element
label is 0-1; as published, ``train_list.json`` holds per-annotator lists for both, which are
averaged as the authors' ``process/process_train.py`` does (the mean, rounded to 6 decimals), so an
element two annotators split is 0.5 and counts as present (binarised at 0.5). Within a file, the
total scores are all lists or all scalars, and so are the element labels. Images are grouped into one item per ``prompt_id`` (file order
within it; ``image_index`` = that order), ranked by total score, with ``human`` and ``elements``
kept for the pointwise conventions. The public test file withholds the scores: it loads, and a
convention that needs them says so. The rating task of ``prefbench train`` rates each image by its
total score (:func:`rating_rows`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from prefbench.data._io import check_text, read_json, require_file
from prefbench.data.model import ImageRef, Item, Split
from prefbench.data.spec import DatasetSpec, Download
from prefbench.errors import DataError, MissingDataError

SPEC = DatasetSpec(
    "evalmuse", ("train", "test"), "srcc", "prefbench.data.evalmuse",
    "EvalMuse-40K (Han et al. 2024): pointwise 1-5 alignment scores and element labels per image",
    kind="pointwise", default_split="train",
    download=Download("DY-Evalab/EvalMuse", {"train": ("train_list.json",), "test": ("test.json",)},
                      note="the annotation files; the images come as the repository's archives"),
    rating_rows="prefbench.data.evalmuse:rating_rows", rating_scale=(1, 5),
)


def _number(v) -> bool:
    try:  # a 400-digit integer overflows a float: not a score
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    except OverflowError:
        return False


def _annotators(value, path, where, what: str) -> float:
    """An annotator list as the authors' ``process/process_train.py`` reads it: the mean, rounded
    to 6 decimals (``round(np.mean(values), 6)``)."""
    if not value or not all(_number(v) for v in value):
        raise DataError(f"{where}: {what} list must hold numbers, got {value!r}"[:200], path)
    return round(float(np.mean(value)), 6)


class _Shape:
    """One field's shape across the file (total scores, or element labels): per-annotator lists
    (``train_list.json`` as published) or scalars (the converter's ``train.json``); a file whose
    rows mix them is refused, naming the first row of each."""

    def __init__(self, path):
        self.path, self.seen = path, None

    def check(self, value, where: str, what: str) -> None:
        shape = "annotator lists" if isinstance(value, list) else "scalars"
        if self.seen is None:
            self.seen = (shape, where, what)
        elif self.seen[0] != shape:
            raise DataError(f"{where}: {what} is one of {shape}, but {self.seen[1]}'s {self.seen[2]} is one of "
                            f"{self.seen[0]}; a file gives either annotator lists (train_list.json) or their "
                            "means (train.json), not both", self.path)


def _score(value, path, where, shape: _Shape) -> float | None:
    if value is None:
        return None
    shape.check(value, where, "total_score")
    if isinstance(value, list):
        value = _annotators(value, path, where, "total_score")
    if not _number(value):
        raise DataError(f"{where}: total_score must be a number or a list of numbers, got {value!r}"[:200], path)
    if not 1 <= value <= 5:
        raise DataError(f"{where}: total_score {value} is outside 1-5", path)
    return float(value)


def _elements(value, path, where, shape: _Shape) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DataError(f"{where}: element_score must be an object {{element: 0/1}}", path)
    out = {}
    for k, v in value.items():
        if v is not None:
            shape.check(v, where, f"element {k!r}")
            if isinstance(v, list):
                v = _annotators(v, path, where, f"element {k!r}")
            if not _number(v) or not 0 <= v <= 1:
                raise DataError(f"{where}: element {k!r} label must be in [0, 1], got {v!r}"[:200], path)
        out[k] = v
    return out


def load(split: str, data_dir: Path, with_images: bool = True) -> Split:
    path = data_dir / f"{split}.json"
    if not path.is_file() and split == "train" and (data_dir / "train_list.json").is_file():
        path = data_dir / "train_list.json"
    require_file(path, "evalmuse", f"Provide EvalMuse's {split}.json in {data_dir} with the images at its img_path "
                 f"values (or run `prefbench download evalmuse --split {split} --data-dir {data_dir}`).")
    raw = read_json(path)
    if not isinstance(raw, list):
        raise DataError("expected a JSON list of images", path)
    groups: dict[str, dict] = {}
    totals, labels = _Shape(path), _Shape(path)
    for pos, obj in enumerate(raw):
        where = f"row {pos}"
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected an object", path)
        pid = obj.get("prompt_id")
        if isinstance(pid, bool) or not isinstance(pid, (str, int)):
            raise DataError(f"{where}: prompt_id must be a string or an integer, got {pid!r}", path)
        g = groups.setdefault(str(pid), {"prompt": check_text(obj, "prompt", path, where), "rows": [],
                                         "first": (where, pid)})
        if type(pid) is not type(g["first"][1]) or check_text(obj, "prompt", path, where) != g["prompt"]:
            # 5 and "5" (or one id with two prompts) would silently merge into one item
            raise DataError(f"{where}: prompt_id {pid!r} and {g['first'][0]}'s prompt_id {g['first'][1]!r} are one item "
                            f"id {str(pid)!r}, but " + ("one is a number, the other a string" if type(pid) is not
                                                        type(g["first"][1]) else "their prompts differ")
                            + "; refused rather than merged", path)
        rel = check_text(obj, "img_path", path, where)
        g["rows"].append((rel, _score(obj.get("total_score"), path, where, totals),
                          _elements(obj.get("element_score"), path, where, labels), obj.get("type")))
    items = []
    unlabelled = 0
    for pid, g in groups.items():
        rels, scores, elements, types = zip(*g["rows"], strict=True)
        refs = [ImageRef(key=r, path=data_dir / r) for r in rels]
        if any(s is None for s in scores):
            unlabelled += 1
            items.append(Item(pid, g["prompt"], refs, [1.0] * len(refs), elements=list(elements),
                              meta={"type": types[0]}))
            continue
        levels = sorted(set(scores), reverse=True)
        items.append(Item(pid, g["prompt"], refs, [float(levels.index(s) + 1) for s in scores], human=list(scores),
                          elements=list(elements), meta={"type": types[0]}))
    if unlabelled and unlabelled != len(items):
        raise DataError(f"{unlabelled} of {len(items)} prompts have images without total_score; "
                        "a split is either labelled or not", path)
    if not items:
        raise MissingDataError(f"evalmuse: {path} holds no images")
    note = "total scores withheld in this file: the pointwise conventions cannot run" if unlabelled else ""
    return Split("evalmuse", split, "srcc", items, source=str(path), root=data_dir, note=note)


def rating_rows(split: str, data_dir: Path, rating_min: int, rating_max: int):
    """The rating task's rows: each image rated by its total score (1-5, the annotators' mean)
    rounded to the nearest integer, a half up, and clamped into the scale
    (:func:`prefbench.data.ratings.from_human`). The test file withholds the scores: refused."""
    from prefbench.data.ratings import from_human

    return from_human(load(split, data_dir), rating_min, rating_max)
