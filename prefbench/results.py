"""Runs and samples as pandas DataFrames, for analysis in a notebook.

>>> from prefbench.results import runs_df, samples_df
>>> runs = runs_df("results")                       # doctest: +SKIP
>>> runs.sort_values("accuracy", ascending=False)   # doctest: +SKIP
>>> samples_df("results/demo-test/random-d8b5e329").groupby("status").size()  # doctest: +SKIP

Both read the run store through :mod:`prefbench.store` (``run.json`` and ``samples.jsonl``),
never a scorer. pandas is the ``pandas`` install extra (``pip install 'prefbench[pandas]'``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from prefbench.errors import DataError, MissingExtraError, UsageError
from prefbench.store import RUN_FILE, SAMPLES_FILE, read_run, read_samples

#: runs_df's columns, in order
RUN_COLUMNS = ("run", "scorer", "model", "model_revision", "engine", "dataset", "split", "convention", "accuracy",
               "ci_low", "ci_high", "n_prompts", "n_pairs", "n_items", "n_images", "ok", "unparsed", "error",
               "forced", "missing", "images_per_s", "wall_s", "status", "created", "finished", "commit", "dirty",
               "config_hash", "params")


def _pandas():
    try:
        import pandas as pd
    except ImportError:
        raise MissingExtraError("prefbench.results", "pandas", "pandas", kind="module") from None
    return pd


def _run_row(rec: dict, run: str) -> dict[str, Any]:
    def get(obj, *keys):
        for key in keys:
            obj = obj.get(key) if isinstance(obj, dict) else None
        return obj

    counts = rec.get("counts") if isinstance(rec.get("counts"), dict) else {}
    return {
        "run": run, "scorer": get(rec, "scorer", "name"), "model": get(rec, "model", "id"),
        "model_revision": get(rec, "model", "revision"), "engine": get(rec, "scorer", "engine"),
        "dataset": get(rec, "dataset", "name"), "split": get(rec, "dataset", "split"),
        **{k: get(rec, "metrics", k) for k in ("convention", "accuracy", "ci_low", "ci_high", "n_prompts", "n_pairs")},
        "n_items": get(rec, "dataset", "n_items"), "n_images": get(rec, "dataset", "n_images"),
        **{k: counts.get(k) for k in ("ok", "unparsed", "error", "forced", "missing")},
        "images_per_s": get(rec, "throughput", "images_per_s"), "wall_s": get(rec, "throughput", "wall_s"),
        "status": rec.get("status"), "created": rec.get("created"), "finished": rec.get("finished"),
        "commit": get(rec, "git", "commit"), "dirty": get(rec, "git", "dirty"), "config_hash": rec.get("config_hash"),
        "params": get(rec, "scorer", "resolved"),
    }


def runs_df(results: str | Path = "results", *, errors: str = "raise"):
    """One row per scoring run under ``results`` (every ``run.json``, sorted by path): scorer,
    model, dataset, split, convention, accuracy and its CI, counts, throughput, commit.

    ``run`` is the run folder relative to ``results``. A run.json that cannot be read raises
    :class:`~prefbench.errors.DataError` naming it, or, with ``errors="skip"``, is left out with
    a warning. Generator-benchmark runs (``kind: generators``) are not scoring runs: left out."""
    pd = _pandas()
    if errors not in ("raise", "skip"):
        raise UsageError(f"errors must be 'raise' or 'skip', got {errors!r}")
    root = Path(results)
    if not root.is_dir():
        raise UsageError(f"{root}: no such results folder")
    rows = []
    for file in sorted(root.rglob(RUN_FILE)):
        try:
            rec = read_run(file)
            if not isinstance(rec.get("scorer"), dict) or not isinstance(rec.get("dataset"), dict):
                raise DataError("not a run record (no scorer or dataset)", file)
        except DataError as exc:
            if errors == "raise":
                raise
            warnings.warn(f"skipped: {exc}", stacklevel=2)
            continue
        if rec.get("kind", "scoring") != "scoring":
            continue
        rows.append(_run_row(rec, file.parent.relative_to(root).as_posix()))
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def samples_df(run_dir: str | Path):
    """One row per scored image of a run: ``item_id``, ``image_index``, ``image``, ``score``,
    ``status``, ``error``, the typed fields (``prob``, ``anchor_index``, ``forced``,
    ``generated_tokens``, ``prompt_tokens``, ``vision_tokens``, ``retryable``) and ``detail`` (traces, as a dict). With the run's
    dataset, scorer and model as columns so that several runs concatenate cleanly."""
    pd = _pandas()
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).is_file():
        raise UsageError(f"{run_dir}: not a run folder (no {RUN_FILE})")
    rec = read_run(run_dir / RUN_FILE)
    rows = read_samples(run_dir / SAMPLES_FILE, repair=False)
    cols = ["item_id", "image_index", "image", "score", "status", "error", "prob", "anchor_index", "forced",
            "generated_tokens", "prompt_tokens", "vision_tokens", "retryable", "detail"]
    flags = ("forced", "retryable")  # written only when true
    frame = pd.DataFrame([{c: row.get(c, False if c in flags else None) for c in cols}
                          for _, row in sorted(rows.items(), key=_order)], columns=cols)
    frame.insert(0, "run", run_dir.name)
    for n, (name, value) in enumerate( (("dataset", (rec.get("dataset") or {}).get("name")), ("split", (rec.get("dataset") or {}).get("split")),
                        ("scorer", (rec.get("scorer") or {}).get("name")), ("model", (rec.get("model") or {}).get("id"))), 1):
        frame.insert(n, name, value)
    return frame


def _order(entry):
    (item_id, k), _ = entry
    return (str(item_id), k)
