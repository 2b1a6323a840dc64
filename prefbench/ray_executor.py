"""``prefbench run --executor ray``: a run's todo list scored by actors on a Ray cluster.

Each actor builds the run's scorer from its typed ScorerSpec (prefbench.scorer_spec) and loads the
model once; this process keeps the run folder (its lock, the one sample writer, the record) and
streams each finished batch into ``samples.jsonl`` as it comes back. So the store's guarantees hold
as in one process: resume skips what is written, a batch is written once, when it comes back, and a
batch whose actor died is retried on another actor (a replacement is started while fewer than
``--workers`` are alive).

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

    def __init__(self, spec):
        from prefbench.scorer_spec import build_scorer

        self.scorer = build_scorer(spec).scorer
        self.scorer.setup()
        self.log: list[str] = []

    def score(self, chunk) -> tuple[list[dict], list[str]]:
        from prefbench.batches import score_chunk

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


class RewardWorker:
    """One actor for ``bench-generators``: the API's reward scorer with its model loaded."""

    def __init__(self, fields: dict):
        from prefbench.api import load_scorer

        self.scorer = load_scorer(fields["scorer"], fields["model"], fields["engine"], seed=fields["seed"],
                                  on_error="nan", mode=fields["mode"], batch_size=fields["batch_size"],
                                  **fields["params"])
        self.scorer.setup()

    def score(self, calls: list) -> list:
        return self.scorer.score_items(calls, on_error="nan")

    def where(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid()}


def dispatch(cfg, worker_cls, fields, n_jobs: int, payload, size, handle, failed, describe, desc: str,
             log) -> dict:
    """Run ``n_jobs`` jobs on ``cfg.workers`` actors of ``worker_cls(fields)``; ``payload(i)`` is
    what job i sends (built when it is sent: a retry builds it again). Each finished job goes to
    ``handle(i, result)`` as it comes back; a job whose actor died is retried on another actor (a
    replacement is started, up to ``cfg.workers`` of them) and after ``MAX_BATCH_RETRIES`` losses
    goes to ``failed(i, reason)``. ``size(i)`` counts a job's images for the progress bar,
    ``describe(i)`` names it in the log. Returns the record's ``executor`` block (wall time in it)."""
    from tqdm import tqdm

    if cfg.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {cfg.workers}")
    ray = _import_ray()
    started = _connect(ray, cfg)
    worker = ray.remote(num_cpus=cfg.worker_cpus, num_gpus=cfg.worker_gpus, max_restarts=0)(worker_cls)
    queue: deque[int] = deque(range(n_jobs))
    tries = [0] * n_jobs
    actors = [worker.remote(fields) for _ in range(min(cfg.workers, n_jobs))]
    idle, inflight = list(actors), {}
    lost = replaced = retried = 0
    hosts: set[str] = set()
    start = time.perf_counter()
    try:
        with tqdm(total=sum(size(i) for i in range(n_jobs)), desc=desc, unit="img", disable=not cfg.progress,
                  mininterval=0.5, dynamic_ncols=True) as bar:
            while queue or inflight:
                while idle and queue:
                    actor, i = idle.pop(), queue.popleft()
                    inflight[actor.score.remote(payload(i))] = (actor, i)
                done, _ = ray.wait(list(inflight), num_returns=1)
                actor, i = inflight.pop(done[0])
                try:
                    result = ray.get(done[0])
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                    if getattr(exc, "actor_init_failed", False):  # the scorer could not be built there
                        raise UsageError(f"a Ray worker could not build the scorer: {exc}") from None
                    lost += 1
                    tries[i] += 1
                    log(f"warning: a Ray worker died scoring the batch at {describe(i)} ({type(exc).__name__}); "
                        "retrying it on another worker")
                    if tries[i] > MAX_BATCH_RETRIES:
                        failed(i, f"Ray worker died {tries[i]} times on this batch")
                        bar.update(size(i))
                        continue
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
                except ray.exceptions.RayTaskError as exc:  # the scorers keep their own errors: anything else
                    failed(i, f"Ray task failed: {exc.cause!r}")
                    idle.append(actor)
                    bar.update(size(i))
                    continue
                handle(i, result)
                idle.append(actor)
                bar.update(size(i))
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
    return {"name": "ray", "workers": cfg.workers, "worker_gpus": cfg.worker_gpus, "worker_cpus": cfg.worker_cpus,
            "cluster": "address given" if cfg.ray_address else "local instance", "hosts": len(hosts) or None,
            "lost_workers": lost, "retried_batches": retried, "batches": n_jobs,
            "wall_s": round(time.perf_counter() - start, 3)}


def score_on_ray(cfg, scorer, tasks: list, writer, log) -> tuple[int, float, dict]:
    """A scoring run's ``tasks`` on ``cfg.workers`` actors; each finished batch goes to ``writer``.

    Returns (images scored, wall seconds, the record's ``executor`` block)."""
    from prefbench.batches import chunks_of, failed_rows
    from prefbench.scorer_spec import ScorerSpec

    batch = cfg.batch_size or getattr(scorer, "batch_size", 16) or 16
    chunks = chunks_of(tasks, batch)
    scored = 0

    def size(i):
        return sum(len(ix) for _, ix in chunks[i])

    def handle(i, result):
        nonlocal scored
        rows, messages = result
        for m in messages:
            log(m)
        writer.write(rows)
        scored += size(i)

    def failed(i, reason):
        nonlocal scored
        writer.write(failed_rows(chunks[i], reason))
        scored += size(i)

    info = dispatch(cfg, ScorerWorker, ScorerSpec.for_run(cfg), len(chunks), lambda i: chunks[i], size, handle, failed,
                    lambda i: f"item {chunks[i][0][0].item_id}", f"{scorer.name} on ray", log)
    return scored, info.pop("wall_s"), info
