"""Shared reading helpers for the loaders: JSON with errors that name file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefbench.errors import DataError, MissingDataError


def require_file(path: Path, dataset: str, what: str) -> Path:
    if not path.is_file():
        raise MissingDataError(
            f"{dataset}: {path} not found. {what} (No hub is contacted; put the files there and rerun.)"
        )
    return path


def read_json(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg}, column {exc.colno})", path, exc.lineno) from None


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a JSONL file as (line number, object); blank lines are skipped."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON ({exc.msg}, column {exc.colno})", path, lineno) from None
            if not isinstance(obj, dict):
                raise DataError("expected a JSON object", path, lineno)
            rows.append((lineno, obj))
    return rows


def check_ranks(ranks: Any, n_images: int, path: Path, where: str, line: int | None = None) -> list[float]:
    if not isinstance(ranks, list) or len(ranks) != n_images:
        raise DataError(f"{where}: expected {n_images} ranks, got {ranks!r}", path, line)
    out = []
    for r in ranks:
        if isinstance(r, bool) or not isinstance(r, (int, float)):
            raise DataError(f"{where}: rank {r!r} is not a number", path, line)
        out.append(r)
    return out
