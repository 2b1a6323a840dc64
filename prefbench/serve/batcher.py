"""Micro-batching: requests from concurrent clients are gathered into the scorer's batches.

One worker task takes the oldest waiting request, then keeps adding waiting requests until the
batch holds ``max_batch_images`` images or ``max_wait_s`` has passed since the first one, and
scores the batch with one :meth:`~prefbench.api.RewardScorer.score_items` call on a single
scoring thread (the model is not thread-safe: exactly one scoring call runs at a time). Each
request's future gets its own slice of the results.

A request whose client went away or timed out before its batch ran is dropped, never scored;
one already inside a running batch has its results discarded, harming no other request.
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

    @property
    def n_images(self) -> int:
        return sum(len(item.images) for item in self.items)


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
    def submit(self, items: list[WireItem]) -> asyncio.Future:
        """Queue one request; its future resolves to one :class:`~prefbench.api.ScoredItem` per item.
        Cancel the future to drop the request."""
        if self.closing:
            raise QueueFull("the server is shutting down; retry later")
        self._start()
        if self.queue_depth >= self.max_queue:
            raise QueueFull(f"the server is busy: {self.max_queue} requests are already waiting; retry later")
        pending = Pending(items, asyncio.get_running_loop().create_future())
        self._waiting.append(pending)
        self._wakeup.set()
        return pending.future

    def _pop_live(self) -> Pending | None:
        while self._waiting:
            p = self._waiting[0]
            if p.future.done():  # its client left or timed out before it was batched: drop it
                self._waiting.popleft()
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
        """Score every item of ``batch`` with one ``score_items`` call per mode; if a call
        fails as a whole, score its requests one by one so only the culprit fails."""
        self.scoring_now = True
        try:
            return self._score_batch_now(batch)
        finally:
            self.scoring_now = False

    def _score_batch_now(self, batch: list[Pending]) -> list[Any]:
        outcomes: list[Any] = [[None] * len(p.items) for p in batch]
        by_mode: dict[str, list[tuple[int, int, WireItem]]] = {}
        for r, pending in enumerate(batch):
            if pending.future.done():
                continue
            for k, item in enumerate(pending.items):
                by_mode.setdefault(item.mode, []).append((r, k, item))
        for mode, entries in by_mode.items():
            try:
                scored = self._call(mode, [e[2] for e in entries])
            except Exception:
                for r in sorted({e[0] for e in entries}):
                    mine = [e for e in entries if e[0] == r]
                    try:
                        for (_, k, _), res in zip(mine, self._call(mode, [e[2] for e in mine])):
                            outcomes[r][k] = res
                    except Exception as exc:  # noqa: BLE001 - reported to that request alone
                        outcomes[r] = exc
                continue
            for (r, k, _), res in zip(entries, scored):
                if not isinstance(outcomes[r], BaseException):
                    outcomes[r][k] = res
        return outcomes

    def _call(self, mode: str, items: list[WireItem]) -> list[Any]:
        return self.scorer.score_items([{"prompt": i.prompt, "images": i.images} for i in items],
                                       on_error="nan", mode=mode)
