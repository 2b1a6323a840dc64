"""The run store: ``run.json`` (the typed record) and ``samples.jsonl`` (one row per image).

Samples are appended and flushed as they are scored. A run killed mid-write leaves at most
one partial last line, which :func:`read_samples` drops (and trims from the file) so that a
resumed run continues cleanly. ``run.json`` is always replaced atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from prefbench.provenance import git_commit, package_versions  # noqa: F401  (re-exported)

RUN_SCHEMA_VERSION = 1
RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, allow_nan=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_run(path: Path) -> dict:
    """Read a run.json (or the run.json inside a run folder)."""
    from prefbench.data._io import read_json
    from prefbench.errors import DataError

    path = Path(path)
    if path.is_dir():
        path = path / RUN_FILE
    if not path.is_file():
        raise DataError("no run.json here (is this a prefbench run folder?)", path)
    data = read_json(path)
    if not isinstance(data, dict) or "schema_version" not in data:
        raise DataError("not a prefbench run record (no schema_version)", path)
    return data


def read_samples(path: Path, repair: bool = True) -> dict[tuple[str, int], dict]:
    """Rows keyed by (item_id, image_index); the last row for a key wins.

    A trailing partial line (a kill mid-write) is dropped and, with ``repair``, trimmed off.
    """
    rows: dict[tuple[str, int], dict] = {}
    if not path.is_file():
        return rows
    good_bytes = 0
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                row = json.loads(raw)
            except json.JSONDecodeError:
                break
            rows[(str(row["item_id"]), int(row["image_index"]))] = row
            good_bytes += len(raw)
    if repair and good_bytes != path.stat().st_size:
        with path.open("r+b") as fh:
            fh.truncate(good_bytes)
    return rows


class SampleWriter:
    """Appends rows and flushes them to disk after every batch."""

    def __init__(self, path: Path):
        self.fh = path.open("a", encoding="utf-8")

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            self.fh.write(json.dumps(row, ensure_ascii=False, allow_nan=False, default=str) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()
