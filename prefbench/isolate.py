"""One bad image fails only itself: a scorer's batch call, checked, and split when it raises.

Every place that scores batches (``prefbench run``, ``bench-generators``, ``rank``, the API and
the server) goes through :func:`score_isolated`. When ``scorer.score_batch(tasks)`` raises, the
batch is scored again item by item, and an item that still raises image by image, so the
exception becomes the error of the image (or images) that cause it and the neighbours keep their
scores. Every result is also checked: a missing result, or an ``ok`` score (or ``prob``) that is
not a finite number (NaN, inf from an encoder or a plugin), is that image's ``error``.

A caller with a deadline (the reward server) sets :func:`stop_when` around its scoring call:
before each scorer batch (a round-robin item's pairs included, and each retry of a split batch)
the check runs, and :class:`Stopped` ends the call once it says so. Inside a running batch the
engines and encoders ask again at their own steps (:mod:`prefbench.stopping` lists them); one
forward pass, or an in-process vLLM ``generate`` call, is not interrupted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from prefbench.stopping import Stopped, check_stop, stop_when  # noqa: F401  (re-exported)


def describe(exc: BaseException) -> str:
    """``TypeName: message`` of an exception (the type alone when the message is empty)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _finite(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def check_result(result: Any):
    """``result`` if it is a well-formed ImageResult with a finite ``ok`` score; else that image's
    error result saying what was wrong."""
    from prefbench.scorers.base import ImageResult

    if not isinstance(result, ImageResult):
        return ImageResult.failed(f"the scorer returned {type(result).__name__}, not an ImageResult")
    if result.status != "ok":
        return result
    if not _finite(result.score):
        return ImageResult(None, "error", f"the scorer returned a non-finite score ({result.score!r})",
                           dict(result.detail), anchor_index=result.anchor_index)
    if result.prob is not None and not _finite(result.prob):
        return ImageResult(None, "error", f"the scorer returned a non-finite probability ({result.prob!r})",
                           dict(result.detail), anchor_index=result.anchor_index)
    return result


def _checked(tasks: Sequence, results: Any) -> list[dict[int, Any]]:
    from prefbench.scorers.base import ImageResult

    results = list(results)
    if len(results) != len(tasks):
        raise RuntimeError(f"the scorer returned {len(results)} results for {len(tasks)} items")
    out = []
    for (_, indices), res in zip(tasks, results):
        if not isinstance(res, dict):
            raise RuntimeError(f"the scorer returned {type(res).__name__} for an item, not a dict")
        out.append({k: check_result(res[k]) if k in res else ImageResult.failed("the scorer returned no result")
                    for k in indices})
    return out


def score_isolated(scorer, tasks: Sequence, log: Callable[[str], Any] | None = None) -> list[dict[int, Any]]:
    """``scorer.score_batch(tasks)`` with every result checked; if the call raises, the tasks
    are scored one by one (and a failing task image by image), so the exception becomes the
    error (``scorer failed: TypeName: message``, retryable) of the images that raise it only."""
    from prefbench.scorers.base import ImageResult

    tasks = [(item, list(indices)) for item, indices in tasks]
    if not tasks:
        return []
    check_stop()
    try:
        return _checked(tasks, scorer.score_batch(tasks))
    except Stopped:  # the caller stopped the work (an engine asked between its chunks): no culprit to find
        raise
    except Exception as exc:  # noqa: BLE001 - split the batch to find the culprit
        if len(tasks) == 1 and len(tasks[0][1]) == 1:
            item, (k,) = tasks[0]
            return [{k: ImageResult.failed(f"scorer failed: {describe(exc)}", retryable=True)}]
        if log is not None and len(tasks) > 1:
            log(f"warning: a batch of {len(tasks)} items failed ({describe(exc)}); scoring its items one by one")
    if len(tasks) > 1:
        return [score_isolated(scorer, [task], log)[0] for task in tasks]
    item, indices = tasks[0]
    out: dict[int, Any] = {}
    for k in indices:
        out.update(score_isolated(scorer, [(item, [k])], log)[0])
    return [out]
