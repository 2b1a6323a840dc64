"""Pure path helpers that every layer may use (no prefbench imports: a leaf of the import graph)."""

from __future__ import annotations

import os


def relative_inside(path: str, base: str) -> str | None:
    """``path`` relative to ``base`` when it lies inside it (both absolute, normalised), else None."""
    base = base.rstrip(os.sep)
    if path == base:
        return "."
    if path.startswith(base + os.sep):
        return path[len(base) + 1:]
    return None
