"""``prefbench bench-generators``: rank text-to-image generators by a scorer's mean reward.

What ImageReward's ``test-benchmark.py`` and HPSv2's ``evaluate_benchmark`` do, stored as a run:

- ``--prompts FILE``: the prompt set (:func:`read_prompts`: ImageReward's JSON list of
  ``{"id", "prompt"}``, a JSON list of prompt strings or object ``{id: prompt}``, JSONL with
  ``prompt_id``/``id`` and ``prompt``, or plain text, one prompt per line, id = 0-based line number);
- ``--images DIR``: ``DIR/<generator>/<prompt_id>_<k>.<png|jpg|jpeg|webp>`` (:func:`scan_images`,
  in :mod:`prefbench.generator_inputs` with :func:`read_prompts`);
  files that do not fit, name an unknown prompt or resolve outside DIR are reported, never read;
- every (generator, prompt) is one item (a pairwise scorer scores a prompt's images of every
  generator together, so that they share its anchor), scored through
  :func:`prefbench.api.load_scorer`; rows
  go to ``samples.jsonl`` as they are scored, so a rerun scores only the items with a missing
  image; a finished run whose samples are untouched is answered from ``run.json``;
- the statistics (:mod:`prefbench.generator_stats`) are per-generator means over prompts of each
  prompt's mean score, with cluster-bootstrap CIs, paired comparisons and rank stability.

A failed image (status ``error`` or ``unparsed``) is counted per generator and left out of the
means; it never counts as a score of 0. See docs/generators.md.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefbench.config_fields import option, same_as
from prefbench.errors import ImageError, UsageError
from prefbench.generator_inputs import GenImage, Prompts, Scan, read_prompts, scan_images
from prefbench.generator_stats import CONFIDENCE, KIND, flat_summary, format_text, summarize
from prefbench.metrics.bootstrap import DEFAULT_SEED
from prefbench.provenance import git_commit, package_versions, portable_command, portable_path
from prefbench.record import RUN_SCHEMA_VERSION, RunRecord
from prefbench.run_config import RunConfig
from prefbench.run_folder import RunFolder, unscored
from prefbench.runner import _hash, _slug, run_folder_name
from prefbench.store import SampleWriter

__all__ = ["GeneratorConfig", "bench_generators", "flat_summary", "format_text", "read_prompts", "scan_images",
           "summarize"]
@dataclass
class GeneratorConfig:
    scorer: str = same_as(RunConfig, "scorer", required=True, help="scorer name (see `prefbench list`)")
    prompts: str = option(metavar="FILE", required=True,
                          help='prompts: JSON list of {"id", "prompt"} (ImageReward\'s benchmark-prompts.json), JSONL '
                               'with "prompt_id"/"id" and "prompt", or text, one prompt per line (id = 0-based line '
                               'number)')
    images: str = option(metavar="DIR", required=True, help="DIR/<generator>/<prompt_id>_<k>.png (or .jpg, .webp)")
    model: str | None = same_as(RunConfig, "model")
    engine: str | None = same_as(RunConfig, "engine")
    params: dict[str, Any] = same_as(RunConfig, "params")
    seed: int = same_as(RunConfig, "seed", default=DEFAULT_SEED, help="scorer seed and bootstrap seed")
    bootstrap_resamples: int = same_as(RunConfig, "bootstrap_resamples",
                                       help="prompt resamples for CIs, comparisons and rank stability")
    results_root: str = same_as(RunConfig, "results_root", help="root for default run folders (runs go to "
                                                                 "<results>/generators-<FILE stem>/)")
    out: str | None = same_as(RunConfig, "out", help="run folder (default: <results>/generators-<FILE stem>/"
                                                     "<scorer>-...-<config hash>)")
    progress: bool = same_as(RunConfig, "progress")
    batch_size: int | None = same_as(RunConfig, "batch_size",
                                     help="prompts x generators per scorer call (default: the scorer's)")
    wait: bool = same_as(RunConfig, "wait")
    #: pairwise scorers: "anchor" (one shared anchor per prompt) or "round_robin" (every pair)
    mode: str = option("anchor", choices=("anchor", "round_robin"), show_default=False,
                       help="pairwise scorers, which compare every generator's images of a prompt together: anchor "
                            "(one shared seeded anchor per prompt; default) or round_robin (every pair; score = win "
                            "rate)")
    #: "local" or "ray" (actors hold the scorer; prefbench.ray_executor): not part of the run's identity
    executor: str = same_as(RunConfig, "executor")
    ray_address: str | None = same_as(RunConfig, "ray_address")
    workers: int = same_as(RunConfig, "workers")
    worker_gpus: float = same_as(RunConfig, "worker_gpus")
    worker_cpus: float = same_as(RunConfig, "worker_cpus")


def _items(scan: Scan, pooled: bool = False) -> dict[str, list[GenImage]]:
    """What is scored together, in scan order: one generator's images of one prompt (``G/P``),
    or, ``pooled`` (a pairwise scorer), every generator's images of one prompt, so that all of
    them are compared with one shared anchor (or with each other, round robin) and their scores
    can be compared across generators. Sample rows stay per (generator, prompt) item."""
    items: dict[str, list[GenImage]] = {}
    for im in scan.images:
        items.setdefault(im.prompt_id if pooled else im.item_id, []).append(im)
    return items


def _todo(items: dict[str, list[GenImage]], rows: dict) -> list[str]:
    """Groups with an image that has no row, or a retryable one (a crashed batch). A group's
    images are scored together (a pairwise scorer's anchor is drawn among them), so such a
    group is scored again whole."""
    return [key for key, ims in items.items() if any(unscored(rows, (im.item_id, im.k)) for im in ims)]


def _row(im: GenImage, result) -> dict:
    row = {"item_id": im.item_id, "image_index": im.k, "generator": im.generator, "prompt_id": im.prompt_id,
           "k": im.k, "image": im.rel, "score": result.score, "status": result.status, "error": result.error}
    row.update(result.typed_fields())
    row["detail"] = result.detail or {}
    return row


def _read_batch(iids: list[str], items: dict[str, list[GenImage]], root: Path):
    """Rows for the images that cannot be read, and ``(item id, [(image, bytes)])`` for the rest."""
    from prefbench.data.model import ImageRef
    from prefbench.scorers.base import ImageResult

    rows, calls = [], []
    for iid in iids:
        readable = []
        for im in items[iid]:
            try:  # confined to DIR again at read time: a symlink swapped in since the scan is refused
                data = ImageRef(im.rel, path=root / im.rel, root=root).read_bytes()
            except ImageError as exc:
                rows.append(_row(im, ImageResult.failed(str(exc))))
                continue
            readable.append((im, data))
        if readable:
            calls.append((iid, readable))
    return rows, calls


def _payload(calls, items: dict[str, list[GenImage]], prompts: Prompts) -> list:
    return [(prompts.text[items[iid][0].prompt_id], [d for _, d in rd]) for iid, rd in calls]


def _scored_rows(calls, scored_items) -> list[dict]:
    rows = []
    for (_, rd), item in zip(calls, scored_items, strict=True):
        for (im, _), res in zip(rd, item.results, strict=True):
            row = _row(im, res)
            # the anchor's index is into the scored group (readable images, all generators when
            # pooled): recorded as the anchor image's path instead
            anchor = row.pop("anchor_index", None)
            if anchor is not None:
                row["anchor_image"] = rd[anchor][0].rel
            rows.append(row)
    return rows


def _score(scorer, todo: list[str], items: dict[str, list[GenImage]], prompts: Prompts, root: Path,
           writer: SampleWriter, cfg: GeneratorConfig, log) -> tuple[int, float]:
    """Score the items ``todo`` in batches; each batch's rows are flushed before the next."""
    from tqdm import tqdm

    batch = scorer.batch_size
    total = sum(len(items[i]) for i in todo)
    scored, start = 0, time.perf_counter()
    with tqdm(total=total, desc=f"{scorer.name} (generators)", unit="img", disable=not cfg.progress,
              file=sys.stderr, mininterval=0.5, dynamic_ncols=True) as bar:
        for b in range(0, len(todo), batch):
            rows, calls = _read_batch(todo[b:b + batch], items, root)
            if calls:
                rows += _scored_rows(calls, scorer.score_items(_payload(calls, items, prompts), on_error="nan"))
            writer.write(rows)
            scored += len(rows)
            bar.update(len(rows))
    return scored, time.perf_counter() - start


def _score_on_ray(scorer, todo: list[str], items: dict[str, list[GenImage]], prompts: Prompts, root: Path,
                  writer: SampleWriter, cfg: GeneratorConfig, log) -> tuple[int, float, dict]:
    """The same batches on Ray actors (each holds the reward scorer and its model); this process
    reads the images (confined to DIR) and writes every returned batch (prefbench.ray_executor)."""
    from prefbench.ray_executor import RewardWorker, dispatch
    from prefbench.scorers.base import ImageResult

    groups = [todo[b:b + scorer.batch_size] for b in range(0, len(todo), scorer.batch_size)]
    pending: dict[int, tuple[list, list]] = {}
    scored = 0

    def payload(i):
        pending[i] = _read_batch(groups[i], items, root)
        return _payload(pending[i][1], items, prompts)

    def size(i):
        return sum(len(items[iid]) for iid in groups[i])

    def handle(i, scored_items):
        nonlocal scored
        rows, calls = pending.pop(i)
        rows += _scored_rows(calls, scored_items)
        writer.write(rows)
        scored += len(rows)

    def failed(i, reason):
        nonlocal scored
        rows, calls = pending.pop(i)
        rows += [_row(im, ImageResult.failed(reason, retryable=True)) for _, rd in calls for im, _ in rd]
        writer.write(rows)
        scored += len(rows)

    fields = {"scorer": cfg.scorer, "model": cfg.model, "engine": cfg.engine, "seed": cfg.seed, "mode": cfg.mode,
              "batch_size": cfg.batch_size, "params": dict(cfg.params)}
    info = dispatch(cfg, RewardWorker, fields, len(groups), payload, size, handle, failed,
                    lambda i: f"prompt x generator {groups[i][0]}", f"{scorer.name} (generators) on ray", log)
    return scored, info.pop("wall_s"), info


def _identity(scorer, scan: Scan, prompts: Prompts) -> dict:
    return {"kind": KIND, **scorer.identity(), "prompts_hash": prompts.content_hash,
            "images_hash": scan.content_hash()}


def default_run_dir(cfg: GeneratorConfig, scorer, config_hash: str) -> Path:
    return (Path(cfg.results_root) / f"generators-{_slug(Path(cfg.prompts).stem)}"
            / run_folder_name(scorer.name, scorer.model, config_hash))


def bench_generators(cfg: GeneratorConfig, log=lambda msg: print(msg, file=sys.stderr)) -> dict:
    """Scan, score (resumably), compute the statistics and write ``run.json``; returns the record."""
    from prefbench.api import load_scorer

    # the scorer first (cheap: no weights until the first image): a mistyped name or option fails at once
    scorer = load_scorer(cfg.scorer, cfg.model, cfg.engine, seed=cfg.seed, on_error="nan", mode=cfg.mode,
                         batch_size=cfg.batch_size, **cfg.params)
    try:
        prompts = read_prompts(cfg.prompts)
        scan = scan_images(cfg.images, prompts)
        if not scan.images:
            found = ", ".join(f"{len(v)} {k}" for k, v in scan.problems.items() if v) or "nothing"
            raise UsageError(f"{cfg.images}: no image named <prompt_id>_<k>.<png|jpg|jpeg|webp> in a generator "
                             f"folder matches a prompt of {cfg.prompts} (found: {found})")
        identity = _identity(scorer, scan, prompts)
        config_hash = _hash(identity)
        run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg, scorer, config_hash)
        with RunFolder.open(run_dir, config_hash, KIND, results_root=None if cfg.out else Path(cfg.results_root),
                            wait=cfg.wait, log=log) as folder:
            return _run_in(folder, cfg, scorer, prompts, scan, identity, log)
    finally:
        scorer.close()


def _run_in(folder: RunFolder, cfg: GeneratorConfig, scorer, prompts: Prompts, scan: Scan, identity: dict,
            log) -> RunRecord:
    stat_opts = {"bootstrap_resamples": cfg.bootstrap_resamples, "bootstrap_seed": cfg.seed, "confidence": CONFIDENCE}
    if (cached := folder.cached_answer("stat_options", stat_opts)) is not None:
        return cached
    items = _items(scan, pooled=scorer.pairwise)
    rows = folder.rows()
    todo = _todo(items, rows)
    record = RunRecord(
        schema_version=RUN_SCHEMA_VERSION,
        kind=KIND,
        status="running",
        run_dir=folder.record_dir,
        config_hash=folder.config_hash,
        created=folder.created,
        scorer=scorer.spec,
        model=scorer.model,
        prompt_template_hash=identity["prompt_template_hash"],
        prompts={"file": portable_path(Path(cfg.prompts).absolute()), "name": Path(cfg.prompts).stem,
                 "format": prompts.format, "file_sha256": prompts.file_sha256,
                 "content_hash": prompts.content_hash, "n_prompts": len(prompts.ids)},
        images={"dir": portable_path(Path(cfg.images).absolute()), "content_hash": identity["images_hash"],
                "n_images": len(scan.images), "n_items": len(items), "problems": scan.problems_json()},
        # what generic run readers (results.runs_df) expect of every record; the prompts are the "dataset"
        dataset={"name": KIND, "split": Path(cfg.prompts).stem, "content_hash": identity["images_hash"],
                 "n_items": len(items), "n_images": len(scan.images)},
        seeds={"seed": cfg.seed, "bootstrap_seed": cfg.seed},
        # a pairwise scorer compares every generator's images of a prompt with one shared anchor
        pooled=scorer.pairwise, mode=scorer.mode,
        stat_options=stat_opts,
        versions=package_versions(),
        git=git_commit(),
        command=portable_command(),
    )
    folder.begin(record)
    scored, wall = 0, 0.0
    if todo:
        if rows:
            log(f"resuming {folder.path}: {len(rows)} images already scored, "
                f"{sum(len(items[i]) for i in todo)} (of {len(todo)} prompts x generators) to go")
        with folder.scoring(record) as writer:
            if cfg.executor == "ray":
                scored, wall, record.executor = _score_on_ray(scorer, todo, items, prompts, scan.root, writer, cfg, log)
            else:
                scored, wall = _score(scorer, todo, items, prompts, scan.root, writer, cfg, log)
        rows = folder.rows()
    record.update(summarize(prompts, scan, rows, cfg.bootstrap_resamples, cfg.seed))
    return folder.finish(record, not _todo(items, rows),
                         {"throughput": folder.throughput(scored, wall), **folder.samples_fingerprint()})
