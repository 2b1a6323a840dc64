"""Micro-batching: requests from concurrent clients are gathered into the scorer's batches.

One worker task takes the oldest waiting request, then keeps adding waiting requests until the
batch holds ``max_batch_images`` images or ``max_wait_s`` has passed since the first one, and
scores the batch on a single scoring thread (the model is not thread-safe: exactly one scoring
call runs at a time), with one :meth:`~prefbench.api.RewardScorer.score_items` call per scoring
mode and scorer batch (below). Each request's future gets its own slice of the results.

A request whose client went away or whose deadline passed before its batch ran is dropped,
never scored. Inside a running batch the work is stopped between the scorer's batches: each
call covers at most the scorer's ``batch_size`` items (as ``score_items`` would split them), the
items of requests that are gone are left out of the next call, and a round-robin item's pairs
stop once its request is gone (:func:`prefbench.isolate.stop_when`). A scorer batch already
running is not interrupted; its results for a gone request are discarded, harming no other.
Because an image's score depends only on its content (see :mod:`prefbench.api`), the batch a
request lands in changes none of its scores.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WireItem:
    """One prompt's decoded images, as the server received them."""

    prompt: str
    images: list[bytes]
    mode: str


@dataclass
class Pending:
    """One HTTP request waiting for (or in) a batch."""

    items: list[WireItem]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)
    #: time.monotonic() past which nobody waits for the answer (None: no deadline)
    deadline: float | None = None

    @property
    def n_images(self) -> int:
        return sum(len(item.images) for item in self.items)

    def gone(self) -> bool:
        """Whether its answer is no longer wanted: answered, cancelled, or past its deadline
        (read from the scoring thread too)."""
        return self.future.done() or (self.deadline is not None and time.monotonic() >= self.deadline)


class Expired(Exception):
    """The request's deadline passed before it was scored (answered with 504)."""


class QueueFull(Exception):
    """The server holds ``max_queue`` waiting requests already (answered with 503)."""


class MicroBatcher:
    """Gathers :class:`Pending` requests into batches of at most ``max_batch_images`` images.

    ``on_batch(n_requests, n_images, seconds)`` is called after each scoring call (metrics).
    The worker starts on the first :meth:`submit`, in the running event loop."""

    def __init__(self, scorer, *, max_batch_images: int = 32, max_wait_s: float = 0.01, max_queue: int = 1024,
                 on_batch: Callable[[int, int, float], None] | None = None):
        if max_batch_images < 1:
            raise ValueError(f"max_batch_images must be at least 1, got {max_batch_images}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self.scorer = scorer
        self.max_batch_images = max_batch_images
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._waiting: collections.deque[Pending] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.running_images = 0
        self.closing = False
        self._running: list[Pending] = []
        #: True while the scoring thread is inside a call (it outlives a cancelled worker task)
        self.scoring_now = False

    # -- state for /metrics --------------------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        """Requests waiting for a batch (a dropped request leaves at the next batch)."""
        return sum(1 for p in self._waiting if not p.future.done())

    @property
    def queued_images(self) -> int:
        return sum(p.n_images for p in self._waiting if not p.future.done())

    # -- lifecycle -------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._executor = self._executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefbench-score")
            self._task = asyncio.get_running_loop().create_task(self._worker(), name="prefbench-batcher")

    def drain(self, grace_s: float) -> None:
        """Shutting down (SIGTERM): refuse new requests, answer every waiting one now with a
        503-worthy error, and give the batch being scored ``grace_s`` seconds; past them its
        requests get the same error (their results are discarded). Call in the event loop."""
        self.closing = True
        while self._waiting:
            p = self._waiting.popleft()
            if not p.future.done():
                p.future.set_exception(QueueFull("the server is shutting down; retry later"))

        def give_up():
            for p in self._running:
                if not p.future.done():
                    p.future.set_exception(QueueFull(f"the server is shutting down and did not finish scoring "
                                                      f"within its grace of {grace_s:g} s; retry later"))

        asyncio.get_running_loop().call_later(grace_s, give_up)

    async def aclose(self) -> None:
        """Stop the worker; waiting requests fail with a 503-worthy error."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        while self._waiting:
            p = self._waiting.popleft()
            if not p.future.done():
                p.future.set_exception(QueueFull("the server is shutting down"))
        if self._executor is not None:
            # a scoring call cannot be interrupted: the server bounds how long it waits for it
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- requests --------------------------------------------------------------------------------
    def submit(self, items: list[WireItem], timeout_s: float | None = None) -> asyncio.Future:
        """Queue one request; its future resolves to one :class:`~prefbench.api.ScoredItem` per item,
        or fails with :class:`Expired` when ``timeout_s`` passes before it is scored (its work is
        dropped, or stopped between scorer batches). Cancel the future to drop the request."""
        if self.closing:
            raise QueueFull("the server is shutting down; retry later")
        self._start()
        if self.queue_depth >= self.max_queue:
            raise QueueFull(f"the server is busy: {self.max_queue} requests are already waiting; retry later")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        pending = Pending(items, asyncio.get_running_loop().create_future(), deadline=deadline)
        self._waiting.append(pending)
        self._wakeup.set()
        return pending.future

    def _pop_live(self) -> Pending | None:
        while self._waiting:
            p = self._waiting[0]
            if p.gone():  # its client left or its deadline passed before it was batched: drop it
                self._waiting.popleft()
                if not p.future.done():
                    p.future.set_exception(Expired("the request's deadline passed while it waited"))
                continue
            return p
        return None

    async def _next_batch(self) -> list[Pending]:
        loop = asyncio.get_running_loop()
        while (first := self._pop_live()) is None:
            self._wakeup.clear()
            await self._wakeup.wait()
        self._waiting.popleft()
        batch, n = [first], first.n_images
        deadline = loop.time() + self.max_wait_s
        while n < self.max_batch_images:
            nxt = self._pop_live()
            if nxt is not None:
                if n + nxt.n_images > self.max_batch_images:
                    break  # it starts the next batch
                self._waiting.popleft()
                batch.append(nxt)
                n += nxt.n_images
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:  # (a cancelled wait loses nothing: the requests stay in the deque)
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                break
        return batch

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            n_images = sum(p.n_images for p in batch)
            self.running_images = n_images
            self._running = batch
            start = time.perf_counter()
            try:
                outcomes = await loop.run_in_executor(self._executor, self._score_batch, batch)
            finally:
                self.running_images = 0
                self._running = []
            if self.on_batch is not None:
                self.on_batch(len(batch), n_images, time.perf_counter() - start)
            for pending, outcome in zip(batch, outcomes):
                if pending.future.done():  # its client left while the batch ran: results discarded
                    continue
                if isinstance(outcome, BaseException):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result(outcome)

    # -- the scoring thread ----------------------------------------------------------------------
    def _score_batch(self, batch: list[Pending]) -> list[Any]:
        """Score every item of ``batch``: per mode, one ``score_items`` call per scorer batch
        (``batch_size`` items; a round-robin item alone), leaving out the requests that are gone;
        if a call fails as a whole, its requests are scored one by one so only the culprit fails."""
        self.scoring_now = True
        try:
            return self._score_batch_now(batch)
        finally:
            self.scoring_now = False

    def _score_batch_now(self, batch: list[Pending]) -> list[Any]:
        outcomes: list[Any] = [[None] * len(p.items) for p in batch]
        by_mode: dict[str, list[tuple[int, int, WireItem]]] = {}
        for r, pending in enumerate(batch):
            for k, item in enumerate(pending.items):
                by_mode.setdefault(item.mode, []).append((r, k, item))
        per_call = getattr(self.scorer, "batch_size", None)  # the items score_items would give one scorer batch
        per_call = per_call if isinstance(per_call, int) and per_call > 0 else None
        for mode, entries in by_mode.items():
            size = 1 if mode == "round_robin" else per_call or len(entries)
            for start in range(0, len(entries), size):
                live = [e for e in entries[start:start + size]
                        if not batch[e[0]].gone() and not isinstance(outcomes[e[0]], BaseException)]
                self._score_chunk(mode, live, batch, outcomes)
        for r in range(len(batch)):
            if not isinstance(outcomes[r], BaseException) and any(o is None for o in outcomes[r]):
                outcomes[r] = Expired("the request's deadline passed while its batch was scored; the rest of "
                                      "its work was stopped")
        return outcomes

    def _score_chunk(self, mode: str, entries: list[tuple[int, int, WireItem]], batch: list[Pending],
                     outcomes: list[Any]) -> None:
        """One scorer call over ``entries`` (stopped between scorer batches once every request it
        serves is gone); if it fails as a whole, each request's entries are scored alone."""
        from prefbench.isolate import Stopped, stop_when

        if not entries:
            return
        requests = sorted({e[0] for e in entries})
        try:
            with stop_when(lambda: all(batch[r].gone() for r in requests)):
                scored = self._call(mode, [e[2] for e in entries])
        except Stopped:
            return  # every request it served is gone: nothing to answer
        except Exception:
            for r in requests:
                mine = [e for e in entries if e[0] == r]
                try:
                    with stop_when(batch[r].gone):
                        for (_, k, _), res in zip(mine, self._call(mode, [e[2] for e in mine])):
                            outcomes[r][k] = res
                except Stopped:
                    pass
                except Exception as exc:  # noqa: BLE001 - reported to that request alone
                    outcomes[r] = exc
            return
        for (r, k, _), res in zip(entries, scored):
            if not isinstance(outcomes[r], BaseException):
                outcomes[r][k] = res

    def _call(self, mode: str, items: list[WireItem]) -> list[Any]:
        return self.scorer.score_items([{"prompt": i.prompt, "images": i.images} for i in items],
                                       on_error="nan", mode=mode)
