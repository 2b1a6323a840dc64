"""Bring-your-own scores: the official accuracy of a JSONL scores file on a split.

One row per image: ``{"prompt_id": ..., "image_index": <position in the item's image list>,
"score": <float>}``. ``prompt_id`` is the dataset's own item id where it has one (ImageReward's
``id``), otherwise the item's 0-based position in its split file, as a string. Only the
annotation file is read, not the images. For pickapic the two scores become probabilities by a
softmax (as PickScore's evaluation does) before the tie threshold applies.
"""

from __future__ import annotations

import math
from pathlib import Path

from prefbench.data import Split, load_dataset
from prefbench.data._io import read_jsonl
from prefbench.errors import DataError
from prefbench.metrics import DEFAULT_RESAMPLES, DEFAULT_SEED, accuracy_for


def read_scores(path: Path, split: Split) -> dict[tuple[str, int], float]:
    path = Path(path)
    if not path.is_file():
        raise DataError("scores file not found", path)
    n_images = {item.item_id: item.n_images for item in split.items}
    scores: dict[tuple[str, int], float] = {}
    unknown: list[str] = []
    for lineno, row in read_jsonl(path):
        missing = {"prompt_id", "image_index", "score"} - row.keys()
        if missing:
            raise DataError(f"missing key(s) {', '.join(sorted(missing))}", path, lineno)
        pid, idx, score = str(row["prompt_id"]), row["image_index"], row["score"]
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise DataError(f"image_index must be an integer, got {idx!r}", path, lineno)
        try:  # float(): a 400-digit integer overflows, and is no score either
            finite = not isinstance(score, bool) and isinstance(score, (int, float)) and math.isfinite(float(score))
        except OverflowError:
            finite = False
        if not finite:
            shown = repr(score) if len(repr(score)) <= 40 else repr(score)[:37] + "..."
            raise DataError(f"score must be a finite number, got {shown}", path, lineno)
        if pid not in n_images:
            unknown.append(f"{pid!r} (line {lineno})")
            continue
        if not 0 <= idx < n_images[pid]:
            raise DataError(f"image_index {idx} out of range for prompt_id {pid!r} "
                            f"({n_images[pid]} images)", path, lineno)
        if (pid, idx) in scores:
            raise DataError(f"duplicate score for prompt_id {pid!r} image_index {idx}", path, lineno)
        scores[(pid, idx)] = float(score)
    if unknown:
        raise DataError(f"{len(unknown)} row(s) name prompt_ids not in {split.dataset}/{split.split}, "
                        f"e.g. {', '.join(unknown[:5])}", path)
    absent = [f"{item.item_id}#{k}" for item in split.items for k in range(item.n_images)
              if (item.item_id, k) not in scores]
    if absent:
        raise DataError(f"{len(absent)} image(s) of {split.dataset}/{split.split} have no score, "
                        f"e.g. {', '.join(absent[:5])}", path)
    return scores


def evaluate_file(
    dataset: str, scores_path: Path, split: str | None = None, data_dir: Path | None = None,
    convention: str | None = None, tie_threshold: float = 0.0,
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
) -> dict:
    if convention:
        from prefbench.metrics import lookup_convention

        lookup_convention(convention)
    data = load_dataset(dataset, split, data_dir, with_images=False)
    scores = read_scores(scores_path, data)
    metrics, _ = accuracy_for(data, scores, convention, tie_threshold, n_resamples, seed)
    return {"dataset": data.dataset, "split": data.split, "scores": str(scores_path), **metrics}
