"""GenAI-Bench-Rank (zhiqiulin/GenAI-Image-Ranking-800, as t2v_metrics reads it).

``<data-dir>/human_rating.json`` maps each prompt id to ``{id, prompt, models: {<generator>:
{"1": [ratings], ..., "9": [ratings]}}}``; the images are ``<data-dir>/<generator>/<id:05d>_<k:02d>.jpeg``
(k = 1..9). The split is the generator (``DALLE_3`` or ``SDXL_Base``). Each prompt is one item of
9 images in k order; ``human[k]`` is the mean rating and the ranks follow it (higher = better, equal
means tie). Item ids are the file's prompt ids. The rating task of ``prefbench train`` rates each
image by its mean rating (:func:`rating_rows`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from prefbench.data._io import read_json, require_file
from prefbench.data.model import ImageRef, Item, Split
from prefbench.data.spec import DatasetSpec, Download
from prefbench.errors import DataError

SPEC = DatasetSpec(
    "genai_rank", ("DALLE_3", "SDXL_Base"), "genai_rank_top1", "prefbench.data.genai_rank",
    "GenAI-Bench-Rank (Lin et al. 2024): 800 prompts x 9 images of one generator, human ratings",
    default_split="DALLE_3",
    download=Download("zhiqiulin/GenAI-Image-Ranking-800", {"*": ("human_rating.json", "{split}.zip")},
                      archives=("*.zip",)),
    rating_rows="prefbench.data.genai_rank:rating_rows", rating_scale=(1, 5),
)


def _finite_number(x) -> bool:
    try:  # a 400-digit integer overflows a float: not a rating
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
    except OverflowError:
        return False


def _ranks(human: list[float]) -> list[float]:
    levels = sorted(set(human), reverse=True)
    return [float(levels.index(h) + 1) for h in human]


def load(split: str, data_dir: Path, with_images: bool = True) -> Split:
    path = require_file(data_dir / "human_rating.json", "genai_rank",
                        f"Provide human_rating.json in {data_dir} and the images under {data_dir / split}/ "
                        f"(or run `prefbench download genai_rank --split {split} --data-dir {data_dir}`).")
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise DataError("expected a JSON object keyed by prompt id", path)
    items, stems = [], {}
    for pid, obj in raw.items():
        where = f"prompt {pid!r}"
        if not re.fullmatch(r"[0-9]{1,9}", pid):  # int() would also read "1_0" (10), " 5", "+5", "٥"
            raise DataError(f"{where}: prompt ids are whole numbers written in digits 0-9 in this set", path)
        if not isinstance(obj, dict) or str(obj.get("id")) != pid or not isinstance(obj.get("prompt"), str):
            raise DataError(f"{where}: needs 'id' (equal to its key) and a 'prompt' string", path)
        ratings = (obj.get("models") or {}).get(split) if isinstance(obj.get("models"), dict) else None
        if not isinstance(ratings, dict):
            raise DataError(f"{where}: no ratings for generator {split!r}", path)
        human = []
        for k in range(1, 10):
            r = ratings.get(str(k))
            if not isinstance(r, list) or not r or not all(_finite_number(x) for x in r):
                raise DataError(f"{where}: image {k} of {split} needs a non-empty list of numeric ratings, got {r!r}",
                                path)
            human.append(float(np.mean(r)))  # as the reference reads it (np.mean): equal means tie exactly
        stem = f"{int(pid):05d}"
        if stem in stems:  # "5" and "05" name the same image files
            raise DataError(f"{where} and prompt {stems[stem]!r} are the same prompt (images {split}/{stem}_*.jpeg); "
                            "refused rather than merged", path)
        stems[stem] = pid
        refs = [ImageRef(key=f"{split}/{stem}_{k:02d}.jpeg", path=data_dir / split / f"{stem}_{k:02d}.jpeg")
                for k in range(1, 10)]
        items.append(Item(pid, obj["prompt"], refs, _ranks(human), human=human))
    return Split("genai_rank", split, "genai_rank_top1", items, source=str(path), root=data_dir)


def rating_rows(split: str, data_dir: Path, rating_min: int, rating_max: int):
    """The rating task's rows: each image rated by its mean human rating (1-5) rounded to the
    nearest integer, a half up, and clamped into the scale (:func:`prefbench.data.ratings.from_human`)."""
    from prefbench.data.ratings import from_human

    return from_human(load(split, data_dir), rating_min, rating_max)
