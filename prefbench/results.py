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
from prefbench.record import Counts, DatasetInfo, GitInfo, Metrics, RunRecord, Throughput
from prefbench.store import RUN_FILE, SAMPLES_FILE, read_record, read_samples

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


def _run_row(rec: RunRecord, run: str) -> dict[str, Any]:
    m, ds, tp = rec.metrics or Metrics(), rec.dataset, rec.throughput or Throughput()
    counts, git = rec.counts or Counts(), rec.git or GitInfo()
    return {
        "run": run, "scorer": rec.scorer.name, "model": rec.model_id,
        "model_revision": rec.model.revision if rec.model else None, "engine": rec.scorer.engine,
        "dataset": ds.name, "split": ds.split,
        **{k: getattr(m, k) for k in ("convention", "accuracy", "ci_low", "ci_high", "n_prompts", "n_pairs")},
        "n_items": ds.n_items, "n_images": ds.n_images,
        **{k: getattr(counts, k) for k in ("ok", "unparsed", "error", "forced", "missing")},
        "images_per_s": tp.images_per_s, "wall_s": tp.wall_s,
        "status": rec.status, "created": rec.created, "finished": rec.finished,
        "commit": git.commit, "dirty": git.dirty, "config_hash": rec.config_hash,
        "params": rec.scorer.resolved,
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
            rec = read_record(file)
            if rec.scorer is None or rec.dataset is None:
                raise DataError("not a run record (no scorer or dataset)", file)
        except DataError as exc:
            if errors == "raise":
                raise
            warnings.warn(f"skipped: {exc}", stacklevel=2)
            continue
        if rec.kind != "scoring":
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
    rec = read_record(run_dir / RUN_FILE)
    rows = read_samples(run_dir / SAMPLES_FILE, repair=False)
    cols = ["item_id", "image_index", "image", "score", "status", "error", "prob", "anchor_index", "forced",
            "generated_tokens", "prompt_tokens", "vision_tokens", "retryable", "detail"]
    flags = ("forced", "retryable")  # written only when true
    frame = pd.DataFrame([{c: row.get(c, False if c in flags else None) for c in cols}
                          for _, row in sorted(rows.items(), key=_order)], columns=cols)
    frame.insert(0, "run", run_dir.name)
    ds = rec.dataset or DatasetInfo()
    for n, (name, value) in enumerate((("dataset", ds.name), ("split", ds.split), ("scorer", rec.scorer_name),
                                       ("model", rec.model_id)), 1):
        frame.insert(n, name, value)
    return frame


def _order(entry):
    (item_id, k), _ = entry
    return (str(item_id), k)
