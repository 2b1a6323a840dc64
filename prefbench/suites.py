"""Suites: what ``prefbench run`` does with no ``--scorer`` on a dataset.

A :class:`Suite` is a list of rows, each an ordinary run (stored, resumable, cached), plus the
table the command prints. Suites are registered per dataset name under the ``prefbench.suites``
entry-point group; the core registers none. The demo world registers the bundled one (the bare
``prefbench run``), as any plugin would, so the CLI reaches it without naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ENTRY_POINT_GROUP = "prefbench.suites"


@dataclass(frozen=True)
class Suite:
    """``run(base_cfg) -> rows`` runs every row on ``dataset`` (one summary dict per row, a skipped
    row saying why); ``leaderboard_text(rows)`` is the table printed."""

    dataset: str
    run: Callable[..., list[dict]]
    leaderboard_text: Callable[[list[dict]], str]
    description: str = ""


_REGISTRY = None


def registry():
    """The suite registry (:class:`prefbench.registry.Registry` of Suite), keyed by dataset."""
    from prefbench.registry import Registry

    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry("suite", ENTRY_POINT_GROUP, {}, expect=Suite)
    return _REGISTRY


def suite_for(dataset: str | None) -> Suite | None:
    """The suite registered for ``dataset``, or None."""
    reg = registry()
    return reg.get(dataset) if dataset and dataset in reg else None
