"""``prefbench run --executor ray``: a run's todo list scored by actors on a Ray cluster.

Each actor builds the run's scorer from its RunConfig and loads the model once; this process keeps
the run folder (its lock, the one sample writer, the record) and streams each finished batch into
``samples.jsonl`` as it comes back. So the store's guarantees hold as in one process: resume skips
what is written, a batch is written once, when it comes back, and a batch whose actor died is
retried on another actor (a replacement is started while fewer than ``--workers`` are alive).

Why actors and not Ray Data's ``map_batches``: the unit of work is prefbench's own batch of items
(the same batches one process scores, so prefill-only scores are the same to the last digit and
sampled ones use the same item-keyed seeds), results must stream to one writer in the order they
finish, and a lost batch must be retried by the run, not silently re-executed behind a dataset.
Ray core (actors, ``ray.wait``) does that in a page; Ray Data would add a dataset layer, pandas
conversions and its own retry semantics between the scorer and the store.

The workers read images from the paths the dataset gives: on several nodes, the data dir must be
on storage every node sees at the same path.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque

from prefbench.errors import MissingExtraError, UsageError

#: a batch is retried this many times on another actor before its images are marked error
#: (retryable: the next run tries them again)
MAX_BATCH_RETRIES = 3


class ScorerWorker:
    """One actor: the run's scorer with its model loaded."""

    def __init__(self, cfg_fields: dict):
        from prefbench.runner import RunConfig, build_scorer

        cfg = RunConfig(**cfg_fields)
        self.scorer, _, _ = build_scorer(cfg)
        self.scorer.setup()
        self.log: list[str] = []

    def score(self, chunk) -> tuple[list[dict], list[str]]:
        from prefbench.runner import score_chunk

        self.log = []
        rows = score_chunk(self.scorer, chunk, self.log.append)
        return rows, self.log

    def where(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid()}


def _import_ray():
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", "ray (the Ray cluster client)", kind="executor") from None
    return ray


def _connect(ray, cfg) -> bool:
    """Connect to (or start) a cluster; True when this call started the connection."""
    if ray.is_initialized():
        return False
    kw = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    try:
        ray.init(address=cfg.ray_address, **kw) if cfg.ray_address else ray.init(**kw)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot reach the Ray cluster at {cfg.ray_address or 'a new local instance'}: {exc}") from None
    return True


def _replay(cfg) -> dict:
    from dataclasses import asdict

    fields = asdict(cfg)
    fields.update(executor="local", progress=False, out=None, shard=None)
    return fields


def score_on_ray(cfg, scorer, tasks: list, writer, log) -> tuple[int, float, dict]:
    """Score ``tasks`` on ``cfg.workers`` actors; each finished batch goes to ``writer``.

    Returns (images scored, wall seconds, the record's ``executor`` block)."""
    from tqdm import tqdm

    from prefbench.runner import chunks_of, failed_rows

    if cfg.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {cfg.workers}")
    ray = _import_ray()
    started = _connect(ray, cfg)
    worker = ray.remote(num_cpus=cfg.worker_cpus, num_gpus=cfg.worker_gpus, max_restarts=0)(ScorerWorker)
    fields = _replay(cfg)
    batch = cfg.batch_size or getattr(scorer, "batch_size", 16) or 16
    chunks = chunks_of(tasks, batch)
    queue: deque[int] = deque(range(len(chunks)))
    tries = [0] * len(chunks)
    actors = [worker.remote(fields) for _ in range(min(cfg.workers, len(chunks)))]
    idle, inflight = list(actors), {}
    lost = replaced = retried = scored = 0
    hosts: set[str] = set()
    start = time.perf_counter()
    total = sum(len(ix) for _, ix in tasks)
    try:
        with tqdm(total=total, desc=f"{scorer.name} on ray", unit="img", disable=not cfg.progress, mininterval=0.5,
                  dynamic_ncols=True) as bar:
            while queue or inflight:
                while idle and queue:
                    actor, i = idle.pop(), queue.popleft()
                    inflight[actor.score.remote(chunks[i])] = (actor, i)
                done, _ = ray.wait(list(inflight), num_returns=1)
                actor, i = inflight.pop(done[0])
                try:
                    rows, messages = ray.get(done[0])
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                    if getattr(exc, "actor_init_failed", False):  # the scorer could not be built there
                        raise UsageError(f"a Ray worker could not build the scorer: {exc}") from None
                    lost += 1
                    tries[i] += 1
                    log(f"warning: a Ray worker died scoring the batch at item {chunks[i][0][0].item_id} "
                        f"({type(exc).__name__}); retrying it on another worker")
                    if tries[i] > MAX_BATCH_RETRIES:
                        rows, messages = failed_rows(chunks[i], f"Ray worker died {tries[i]} times on this batch"), []
                    else:
                        retried += 1
                        queue.appendleft(i)
                        if replaced < cfg.workers:  # keep the pool at --workers
                            replaced += 1
                            actors.append(worker.remote(fields))
                            idle.append(actors[-1])
                        elif not idle and not inflight:
                            raise UsageError("every Ray worker died; the rows written so far are kept: rerun "
                                             "the same command to resume") from None
                        continue
                except ray.exceptions.RayTaskError as exc:  # score_chunk keeps scorer errors: anything else
                    rows, messages = failed_rows(chunks[i], f"Ray task failed: {exc.cause!r}"), []
                for m in messages:
                    log(m)
                writer.write(rows)
                idle.append(actor)
                n = sum(len(ix) for _, ix in chunks[i])
                scored += n
                bar.update(n)
        for a in idle:
            try:
                hosts.add(ray.get(a.where.remote(), timeout=30)["host"])
            except Exception:  # noqa: BLE001 - only for the record
                pass
    finally:
        for a in actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        if started:
            ray.shutdown()
    wall = time.perf_counter() - start
    info = {"name": "ray", "workers": cfg.workers, "worker_gpus": cfg.worker_gpus, "worker_cpus": cfg.worker_cpus,
            "cluster": "address given" if cfg.ray_address else "local instance", "hosts": len(hosts) or None,
            "lost_workers": lost, "retried_batches": retried, "batches": len(chunks)}
    return scored, wall, info
