"""Bring-your-own scores: the official accuracy of a JSONL scores file on a split.

One row per image: ``{"prompt_id": ..., "image_index": <position in the item's image list>,
"score": <float>}``. ``prompt_id`` is the dataset's own item id where it has one (ImageReward's
``id``), otherwise the item's 0-based position in its split file, as a string. Only the
annotation file is read, not the images. For pickapic the two scores become probabilities by a
softmax (as PickScore's evaluation does) before the tie threshold applies. A row may add
``"elements": {element: p}``, the image's element predictions (EvalMuse's element accuracy).

Judges that answer for a pair rather than score images give a **verdict file** instead (or
beside the scores): JSONL, one row per judgement, ``{"prompt_id": ..., "verdict": <the judge's
answer text>}`` for GenAI-Bench's 4-way rule (``genai_judge``: the first ``[[...]]`` span is the
verdict; none = unparsed, counted wrong), or ``{"prompt_id": ..., "order": "forward"|"reverse",
"verdict": "A"|"B"|...}`` for MMRB2 (``mmrb2``: "reverse" means the judge saw response B first
and its answer names positions, flipped before comparing; an empty verdict is not counted).
``prompt_id`` and ``image_index`` 0/1 name the pair's images in stored order.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from prefbench.data import Split, load_dataset, split_at_limit
from prefbench.data._io import read_jsonl
from prefbench.errors import DataError
from prefbench.metrics import DEFAULT_RESAMPLES, DEFAULT_SEED, accuracy_for


def evaluated_split(dataset: str, split: str | None, data_dir: Path | None,
                    limit: int | None = None) -> tuple[Split, frozenset[str]]:
    """The annotation ``evaluate`` scores: the whole split, or its first ``limit`` items as ``prefbench
    run --limit`` takes them; and the ids of the items ``limit`` leaves out, whose rows in a file are
    read past rather than refused (a file of the whole split, or of a longer run, scores its first N)."""
    data = load_dataset(dataset, split, data_dir, with_images=False)
    if limit is None:
        return data, frozenset()
    kept, rest = split_at_limit(data.items, limit)
    return replace(data, items=kept), frozenset(it.item_id for it in rest)


def read_scores(path: Path, split: Split, elements: dict | None = None,
                beyond: frozenset[str] = frozenset()) -> dict[tuple[str, int], float]:
    """The scores of ``path``; element predictions go into ``elements`` when given. Rows of the
    ``beyond`` items (left out by ``--limit``) are read past."""
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
        if pid in beyond:
            continue
        if pid not in n_images:
            unknown.append(f"{pid!r} (line {lineno})")
            continue
        if not 0 <= idx < n_images[pid]:
            raise DataError(f"image_index {idx} out of range for prompt_id {pid!r} "
                            f"({n_images[pid]} images)", path, lineno)
        if (pid, idx) in scores:
            raise DataError(f"duplicate score for prompt_id {pid!r} image_index {idx}", path, lineno)
        scores[(pid, idx)] = float(score)
        if "elements" in row:
            el = row["elements"]
            if not isinstance(el, dict) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
                    for v in el.values()):
                raise DataError("elements must be an object {element: finite number}", path, lineno)
            if elements is not None:
                elements[(pid, idx)] = {str(k): float(v) for k, v in el.items()}
    if unknown:
        raise DataError(f"{len(unknown)} row(s) name prompt_ids not in {split.dataset}/{split.split}, "
                        f"e.g. {', '.join(unknown[:5])}", path)
    absent = [f"{item.item_id}#{k}" for item in split.items for k in range(item.n_images)
              if (item.item_id, k) not in scores]
    if absent:
        raise DataError(f"{len(absent)} image(s) of {split.dataset}/{split.split} have no score, "
                        f"e.g. {', '.join(absent[:5])}", path)
    return scores


def read_verdicts(path: Path, split: Split, convention: str,
                  beyond: frozenset[str] = frozenset()) -> dict[str, dict]:
    """``{item_id: {"verdict": text}}`` (genai_judge) or ``{item_id: {"forward": ..., "reverse": ...}}``
    (mmrb2) from a verdict file; every item gets an entry (empty when the file has none for it:
    genai_judge refuses that, mmrb2 reports the pair missing). What a row holds is the
    convention's ``verdict_keys``: one verdict per item, or one per presentation order."""
    from prefbench.metrics import conventions, lookup_convention

    path = Path(path)
    if not path.is_file():
        raise DataError("verdict file not found", path)
    rule = lookup_convention(convention)
    keys = rule.verdict_keys
    if not keys:
        readers = sorted(n for n, c in conventions().items() if c.verdict_keys)
        raise DataError(f"verdicts are read by the {', '.join(readers)} conventions, not {convention!r}", path)
    ids = {item.item_id for item in split.items}
    out: dict[str, dict] = {i: {} for i in ids}
    for lineno, row in read_jsonl(path):
        if "prompt_id" not in row or "verdict" not in row:
            raise DataError("a verdict row needs prompt_id and verdict", path, lineno)
        pid, verdict = str(row["prompt_id"]), row["verdict"]
        if pid in beyond:
            continue
        if pid not in ids:
            raise DataError(f"prompt_id {pid!r} is not in {split.dataset}/{split.split}", path, lineno)
        if verdict is not None and not isinstance(verdict, str):
            raise DataError(f"verdict must be a string (or null), got {verdict!r}"[:200], path, lineno)
        key = keys[0]
        if len(keys) > 1:
            key = row.get("order")
            if key not in keys:
                raise DataError(f"order must be {' or '.join(repr(k) for k in keys)}, got {key!r}", path, lineno)
        if key in out[pid]:
            raise DataError(f"duplicate {key} verdict for prompt_id {pid!r}", path, lineno)
        out[pid][key] = verdict
    if rule.verdicts_required:
        absent = sorted(i for i, v in out.items() if not v)
        if absent:
            raise DataError(f"{len(absent)} vote(s) of {split.dataset}/{split.split} have no verdict, "
                            f"e.g. {', '.join(absent[:5])}", path)
    return out


def evaluate_file(
    dataset: str, scores_path: Path | None = None, split: str | None = None, data_dir: Path | None = None,
    convention: str | None = None, tie_threshold: float = 0.0,
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, verdicts_path: Path | None = None,
    limit: int | None = None,
) -> dict:
    from prefbench.errors import UsageError
    from prefbench.metrics import lookup_convention

    if convention:
        lookup_convention(convention)
    if scores_path is None and verdicts_path is None:
        raise UsageError("give --scores (per-image scores), --verdicts (a judge's answers), or both")
    data, beyond = evaluated_split(dataset, split, data_dir, limit)
    convention = convention or data.convention
    elements: dict = {}
    scores = read_scores(scores_path, data, elements, beyond) if scores_path is not None else {}
    outputs = {"element_scores": elements}
    if verdicts_path is not None:
        outputs["verdicts"] = read_verdicts(verdicts_path, data, convention, beyond)
    try:
        metrics, _ = accuracy_for(data, scores, convention, tie_threshold, n_resamples, seed, outputs=outputs)
    except ValueError as exc:  # a convention that needs labels or outputs this input lacks
        raise UsageError(f"{convention} on {data.dataset}/{data.split}: {exc}") from None
    out = {"dataset": data.dataset, "split": data.split, **metrics}
    if limit is not None:
        out["limit"] = limit
    if scores_path is not None:
        out["scores"] = str(scores_path)
    if verdicts_path is not None:
        out["verdicts"] = str(verdicts_path)
    return out
