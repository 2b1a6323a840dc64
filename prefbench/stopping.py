"""Stopping work nobody waits for any more: a thread's stop check, asked between units of work.

A caller with a deadline (the reward server) sets :func:`stop_when` around its scoring call. The
work asks :func:`check_stop` at its natural boundaries: before each scorer batch
(:func:`prefbench.isolate.score_isolated`) and, inside one, before each sub-batch an engine runs
(the transformers engine's planned chunks) and at each token it generates, before each forward
pass of an encoder, and every :data:`POLL_S` while the OpenAI-compatible engine's requests are in
flight (they run on the engine's event-loop thread: the caller's thread polls, then cancels them).
So a long batch (a 64-image item's 63 pairwise comparisons, a 512-token reasoning) stops within a
step instead of running to its end; what cannot stop is one forward pass, and the in-process vLLM
engine's ``generate`` call. A leaf module: every layer may import it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_stop = threading.local()
#: how often a thread that waits on other threads' work (the OpenAI engine's requests) asks its check
POLL_S = 0.2


class Stopped(Exception):
    """The caller's :func:`stop_when` check said to stop (the work's deadline has passed)."""


@contextmanager
def stop_when(check: Callable[[], bool]) -> Iterator[None]:
    """In this thread, :func:`check_stop` raises :class:`Stopped` once ``check()`` is true."""
    previous = getattr(_stop, "check", None)
    _stop.check = check
    try:
        yield
    finally:
        _stop.check = previous


def check_stop(where: str = "before a scorer batch") -> None:
    """Raise :class:`Stopped` when this thread's :func:`stop_when` check says so (else nothing)."""
    check = getattr(_stop, "check", None)
    if check is not None and check():
        raise Stopped(f"stopped {where}: the work is no longer wanted")


def armed() -> bool:
    """Whether this thread has a :func:`stop_when` check (a waiting thread polls only then)."""
    return getattr(_stop, "check", None) is not None
