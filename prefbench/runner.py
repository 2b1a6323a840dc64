"""A scoring run: its config (:class:`prefbench.run_config.RunConfig`), the run's identity (config hash, folder name), its todo list,
the metrics of its samples and what its ``run.json`` says. The folder's lifecycle (lock, cached
answer, sample writer, status, atomic record) is :class:`prefbench.run_folder.RunFolder`'s; one
batch into sample rows is :mod:`prefbench.batches`'; the scorer resolves through
:mod:`prefbench.scorer_spec`.

Resume: the run folder is keyed by a hash of everything that changes the scores (scorer
options, model, prompt templates, dataset content, --limit). Starting the same configuration
again reads ``samples.jsonl``, scores only the images without a row (plus rows a crashed batch
marked ``retryable``) and ends with the same metrics. A finished run whose samples are
unchanged is answered from its run.json without loading the scorer.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

from prefbench.batches import chunks_of, failed_rows, sample_row, score_chunk  # noqa: F401  (re-exported)
from prefbench.data import Split, load_dataset
from prefbench.errors import UsageError
from prefbench.metrics import (
    accuracy_for,
    anchor_outcomes,
    brier_score,
    expected_calibration_error,
    reliability_bins,
)
from prefbench.provenance import (
    accelerator_info,
    git_commit,
    package_versions,
    portable_command,
    portable_path,
)
from prefbench.record import RUN_SCHEMA_VERSION, Metrics, RunRecord
from prefbench.run_config import METRIC_OPTIONS, RunConfig  # noqa: F401  (re-exported: its old home)
from prefbench.run_folder import RunFolder
from prefbench.scorer_spec import ScorerSpec, scorer_identity  # noqa: F401  (re-exported)
from prefbench.scorer_spec import build_scorer as resolve
from prefbench.store import SampleWriter


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[-48:] or "model"


def scorer_spec(cfg: RunConfig) -> ScorerSpec:
    """The run's scorer request (:mod:`prefbench.scorer_spec` resolves it, as for the API and serve)."""
    return ScorerSpec.for_run(cfg)


def build_scorer(cfg: RunConfig):
    """(scorer, the record's scorer spec, model info) for a run's config."""
    built = resolve(scorer_spec(cfg))
    return built.scorer, built.record, built.model_info


def config_identity(spec: dict, scorer, split: Split, cfg: RunConfig, model_info: dict) -> dict:
    return {
        **scorer_identity(spec, scorer, model_info),
        "dataset": split.dataset,
        "split": split.split,
        "dataset_hash": split.content_hash(),
        "limit": cfg.limit,
        # only when set, so that the hashes of runs made before the option existed still hold
        **({"allow_outside_data_dir": True} if cfg.allow_outside_data_dir else {}),
    }


def config_hash_of(spec: dict, scorer, split: Split, cfg: RunConfig, model_info: dict) -> str:
    """The config hash a run of this configuration has (a shard's is its whole run's)."""
    return _hash(config_identity(spec, scorer, split, cfg, model_info))


def dataset_provenance(split: Split) -> dict:
    """Where the split was read from, in portable form: the data dir as :func:`portable_path`
    records it and the annotation file relative to it; a generated dataset (no data dir) by the
    name of the folder it was generated into."""
    from prefbench.data import dataset_info

    source, root = split.source, split.root
    if not dataset_info(split.dataset).needs_data_dir:
        return {"source": Path(source).name if source else None, "data_dir": None}
    rel = None
    if source and root is not None:
        try:
            rel = Path(source).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            rel = None
    return {"source": rel if rel is not None else (portable_path(source) if source else None),
            "data_dir": portable_path(Path(root).absolute()) if root is not None else None}


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def run_folder_name(scorer: str, model_info: dict, config_hash: str) -> str:
    """``<scorer>[-<model's last path part>]-<config hash[:8]>``: a run folder's name."""
    model = model_info.get("id")
    # a plugin's name is not trusted to be a file name: "../../../x" would leave --results
    name = _slug(scorer).lstrip(".") or "scorer"
    return name + (f"-{_slug(Path(str(model)).name)}" if model else "") + f"-{config_hash[:8]}"


def default_run_dir(cfg: RunConfig, spec: dict, model_info: dict, config_hash: str, split: Split) -> Path:
    return Path(cfg.results_root) / f"{split.dataset}-{split.split}" / run_folder_name(spec["name"], model_info,
                                                                                       config_hash)


def _todo(split: Split, rows: dict) -> list[tuple[Any, list[int]]]:
    tasks = []
    for item in split.items:
        missing = [k for k in range(item.n_images)
                   if (item.item_id, k) not in rows or rows[(item.item_id, k)].get("retryable")]
        if missing:
            tasks.append((item, missing))
    return tasks


def _score(scorer, tasks, writer: SampleWriter, cfg: RunConfig, log) -> tuple[int, float]:
    from tqdm import tqdm

    batch = cfg.batch_size or getattr(scorer, "batch_size", 16) or 16
    total = sum(len(ix) for _, ix in tasks)
    scored, start = 0, time.perf_counter()
    with tqdm(total=total, desc=f"{scorer.name}", unit="img", disable=not cfg.progress, file=sys.stderr,
              mininterval=0.5, dynamic_ncols=True) as bar:
        for chunk in chunks_of(tasks, batch):
            rows = score_chunk(scorer, chunk, log)
            writer.write(rows)
            n = sum(len(ix) for _, ix in chunk)
            scored += n
            bar.update(n)
    return scored, time.perf_counter() - start


def _calibration(split: Split, rows: dict) -> dict:
    """Brier / ECE of the run's pairwise probabilities: an anchor scorer's P(image beats anchor), or,
    for a scorer that gives sigma, P(A beats B) = Phi((mu_A - mu_B) / sqrt(sigma_A^2 + sigma_B^2))
    over every human-untied pair (:mod:`prefbench.metrics.uncertainty`)."""
    from prefbench.metrics.uncertainty import sigma_outcomes

    probs, outs = [], []
    for item in split.items:
        anchor = None
        item_probs, mus, sigmas = [], [], []
        for k in range(item.n_images):
            row = rows.get((item.item_id, k), {})
            anchor = row.get("anchor_index", anchor)
            ok = row.get("status") == "ok"
            item_probs.append(row.get("prob") if ok else None)
            mus.append(row.get("score") if ok else None)
            sigmas.append(row.get("sigma") if ok else None)
        if anchor is None:
            if any(s is not None for s in sigmas):
                p, y = sigma_outcomes(item.ranks, mus, sigmas)
                probs += p
                outs += y
            continue
        p, y = anchor_outcomes(item.ranks, [float("nan") if v is None else v for v in item_probs], anchor)
        probs += p
        outs += y
    if not probs:
        return {}
    return {"brier": brier_score(probs, outs), "ece": expected_calibration_error(probs, outs),
            "n_calibration_pairs": len(probs), "reliability": reliability_bins(probs, outs)}


def summarize(split: Split, rows: dict, cfg: RunConfig, convention: str | None = None) -> tuple[dict, dict, dict]:
    """Metrics, per-prompt block and status counts from sample rows."""
    scores = {key: row["score"] for key, row in rows.items() if row.get("status") == "ok"}
    # per-order judgements of a pairwise scorer that showed both orders (position-consistent rules)
    order_probs = {key: row["order_probs"] for key, row in rows.items()
                   if row.get("status") == "ok" and isinstance(row.get("order_probs"), dict)}
    metrics, stats = accuracy_for(split, scores, convention or cfg.convention, cfg.tie_threshold,
                                  cfg.bootstrap_resamples, cfg.bootstrap_seed,
                                  outputs={"order_probs": order_probs} if order_probs else None)
    calibration = _calibration(split, rows)
    reliability = calibration.pop("reliability", None)
    metrics.update(calibration)
    counts = {"ok": 0, "unparsed": 0, "error": 0, "forced": 0, "missing": 0}
    for item in split.items:
        for k in range(item.n_images):
            row = rows.get((item.item_id, k))
            if row is None:
                counts["missing"] += 1
                continue
            counts[row["status"]] = counts.get(row["status"], 0) + 1
            if row.get("forced"):
                counts["forced"] += 1
    extra = {"per_prompt": stats.to_json()}
    if reliability:
        extra["reliability"] = reliability
    return metrics, extra, counts


def _finite(x):
    return None if isinstance(x, float) and not math.isfinite(x) else x


def check_convention_fits(name: str, split: Split) -> None:
    """Refuse, before scoring, a convention this split or a run cannot feed: item sizes, human
    fields the split lacks, or outputs a run does not produce (element predictions)."""
    from prefbench.metrics import lookup_convention

    rule = lookup_convention(name)
    where = f"{name} convention on {split.dataset}/{split.split}"
    if "element_scores" in rule.needs:
        raise UsageError(f"{where}: it needs per-element predictions, which a run does not produce; score the "
                         "elements yourself and use `prefbench evaluate --scores` with an \"elements\" field")
    for need in rule.needs:
        if any(getattr(item, need) is None for item in split.items):
            raise UsageError(f"{where}: the items have no {need!r} (the convention needs it)"
                             + (f"; {split.note}" if split.note else ""))
    sizes = {item.n_images for item in split.items}
    if rule.n_images is not None and sizes - {rule.n_images}:
        raise UsageError(f"{where}: it needs {rule.n_images} images per item, the split has {sorted(sizes)}")


def run(cfg: RunConfig, log=lambda msg: print(msg, file=sys.stderr),
        seed_rows: list[dict] | None = None) -> RunRecord:
    """Score, store and summarise; returns the run record (also written to run.json).

    ``seed_rows``: sample rows scored elsewhere (the shards ``prefbench merge`` joins), written to
    a new run folder before anything is scored, so that only what they lack is scored."""
    # the scorer first: a mistyped name or option fails before a dataset is read (or generated)
    if cfg.convention:  # a wrong name fails here, before anything is scored
        from prefbench.metrics import lookup_convention

        lookup_convention(cfg.convention)
    scorer, spec, model_info = build_scorer(cfg)
    split = load_dataset(cfg.dataset, cfg.split, cfg.data_dir, limit=cfg.limit,
                         allow_outside_data_dir=cfg.allow_outside_data_dir)
    check_convention_fits(cfg.convention or split.convention, split)
    identity = config_identity(spec, scorer, split, cfg, model_info)
    config_hash = _hash(identity)  # a shard's is the whole run's: merge checks they agree (config_hash_of)
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg, spec, model_info, config_hash, split)
    work = split
    if cfg.shard is not None:
        from prefbench.shards import shard_folder, shard_split

        work = shard_split(split, *cfg.shard)
        run_dir = run_dir if cfg.out else shard_folder(run_dir, *cfg.shard)
    kind = "shard" if cfg.shard is not None else "scoring"
    with RunFolder.open(run_dir, config_hash, kind, results_root=None if cfg.out else Path(cfg.results_root),
                        wait=cfg.wait, log=log) as folder:
        return _run_in(folder, cfg, scorer, spec, model_info, work, identity, log, seed_rows=seed_rows)


def _run_in(folder: RunFolder, cfg: RunConfig, scorer, spec: dict, model_info: dict, split: Split, identity: dict,
            log, seed_rows: list[dict] | None = None) -> RunRecord:
    previous = folder.previous
    if previous and cfg.shard is not None:
        from prefbench.shards import check_same_shard

        check_same_shard(previous, cfg, folder.path)
    metric_opts = {"convention": cfg.convention or split.convention, "tie_threshold": cfg.tie_threshold,
                   "bootstrap_resamples": cfg.bootstrap_resamples, "bootstrap_seed": cfg.bootstrap_seed}
    # a finished run whose samples are untouched is answered from run.json
    if (cached := folder.cached_answer("metric_options", metric_opts)) is not None:
        return cached

    rows = folder.rows()
    record = RunRecord(
        schema_version=RUN_SCHEMA_VERSION,
        status="running",
        run_dir=folder.record_dir,
        config_hash=folder.config_hash,
        created=folder.created,
        scorer=spec,
        model=model_info,
        prompt_template_hash=scorer.prompt_template_hash(),
        dataset={"name": split.dataset, "split": split.split, "content_hash": identity["dataset_hash"],
                 "n_items": len(split), "n_images": split.n_images, **dataset_provenance(split),
                 "note": split.note, "limit": cfg.limit,
                 **({"allow_outside_data_dir": True} if cfg.allow_outside_data_dir else {})},
        seeds={"seed": cfg.seed, "bootstrap_seed": cfg.bootstrap_seed},
        metric_options=metric_opts,
        versions=package_versions(),
        git=git_commit(),
        command=portable_command(),
    )
    if cfg.shard is not None:
        from prefbench.shards import shard_block

        record = RunRecord(kind="shard", **{k: getattr(record, k) for k in record.keys()},
                           shard=shard_block(cfg, split))
    if folder.begin(record, seed_rows=seed_rows if not rows else None):
        rows = folder.rows()
    tasks = _todo(split, rows)
    scored, wall, setup_s = 0, 0.0, None
    if tasks:
        n_todo = sum(len(ix) for _, ix in tasks)
        if rows:
            # a row marked retryable (a server down, a crashed batch) failed and is scored again
            retry = sum(1 for row in rows.values() if row.get("retryable"))
            log(f"resuming {folder.path}: {len(rows) - retry} images already scored, {n_todo} to go"
                + (f" ({retry} of them failed with a retryable error and are tried again)" if retry else ""))
        if not cfg.progress:  # the frameworks' bars too (transformers' "Loading weights")
            from prefbench.weights import quiet_progress_bars

            quiet_progress_bars()
        try:
            with folder.scoring(record) as writer:
                if cfg.executor == "ray":  # the workers load the model; this process only writes
                    from prefbench.ray_executor import score_on_ray

                    scored, wall, record.executor = score_on_ray(cfg, scorer, tasks, writer, log)
                else:
                    loading = time.perf_counter()
                    scorer.setup()
                    setup_s = time.perf_counter() - loading
                    scored, wall = _score(scorer, tasks, writer, cfg, log)
        finally:
            scorer.close()
        rows = folder.rows()
    metrics, extra, counts = summarize(split, rows, cfg)
    if counts["ok"] == 0:  # not "accuracy 0": there is no accuracy when nothing was scored
        metrics.update(accuracy=None, ci_low=None, ci_high=None, kendall_tau_b=None, spearman=None)
    summary = scorer.summary_of_rows(rows.values()) if tasks else (previous.scorer_summary if previous else None) or {}
    throughput = folder.throughput(scored, wall)
    if setup_s is not None:  # the phases of this session: loading the model, then scoring
        throughput["setup_s"] = round(setup_s, 3)
    throughput.update(token_totals(rows.values(), scored, wall))
    # retryable rows (a crashed batch) keep the run open so that the next start retries them
    complete = counts["missing"] == 0 and not _todo(split, rows)
    acc = accelerator_info() if scored else None  # the GPUs this session scored on (none: no key)
    return folder.finish(record, complete, {
        "metrics": {k: _finite(v) for k, v in metrics.items()}, "counts": counts, "throughput": throughput,
        "scorer_summary": summary, **folder.samples_fingerprint(), **extra, **({"accelerator": acc} if acc else {}),
    })


def token_totals(rows, scored: int, wall: float) -> dict:
    """Generated, prompt and vision tokens over the run's rows, and per second of this session's
    scoring (the utilisation figures: tokens/s, and with the model's size about 2 FLOP per
    parameter per token)."""
    out: dict[str, Any] = {}
    for key in ("generated_tokens", "prompt_tokens", "vision_tokens"):
        total = sum(int(r.get(key) or 0) for r in rows)
        if total:
            out[key] = total
            if scored and wall > 0:
                out[f"{key}_per_s"] = round(total / wall, 3)
    return out


def flat_summary(record: RunRecord) -> dict:
    """The flat JSON object `prefbench run --json` prints."""
    m = record.metrics or Metrics()
    return {
        "dataset": record.dataset.name, "split": record.dataset.split,
        "scorer": record.scorer.name, "model": record.model_id,
        "convention": m.convention, "accuracy": m.accuracy,
        "ci_low": m.ci_low, "ci_high": m.ci_high,
        "n_prompts": m.n_prompts, "n_pairs": m.n_pairs,
        "kendall_tau_b": m.kendall_tau_b, "spearman": m.spearman,
        **{k: getattr(m, k) for k in ("brier", "ece") if m.has(k)},
        "counts": record.counts.to_json() if record.counts else None,
        "images_per_s": record.throughput.images_per_s if record.throughput else None,
        "status": record.status, "cached": bool(record.cached), "run_dir": record.run_dir,
    }


def load_per_prompt(record: RunRecord | dict):
    """The per-prompt statistics of a finished run's record (a parsed run.json works too)."""
    from prefbench.metrics import PerPrompt

    if isinstance(record, dict):
        record = RunRecord.read(record)
    return PerPrompt.from_json(record.metrics.convention, record.per_prompt, record.metrics.n_pairs)
