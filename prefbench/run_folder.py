"""One run folder's lifecycle, for every kind of run: scoring runs, their shards and generator runs.

::

    with RunFolder.open(run_dir, config_hash, kind, ...) as folder:   # refuse symlinks, lock, read the record
        cached = folder.cached_answer("metric_options", options)      # complete + same options + samples untouched
        rows = folder.rows()                                          # samples.jsonl, repaired on resume
        record = RunRecord(..., created=folder.created, ...)          # what the run is
        folder.begin(record)                                          # a new folder: the "running" record
        with folder.scoring(record) as writer:                        # appends rows; Ctrl-C -> "interrupted"
            ...
        folder.finish(record, complete, {... **folder.samples_fingerprint() ...})

The caller decides what to score (its todo list: :func:`unscored` rows), how (in this process or on
Ray actors) and what the record says; the folder owns the lock, the cached answer, the sample
writer, the status transitions and the atomic ``run.json``. A folder holds one configuration of
one kind: another is refused with a message that says what to do.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefbench.errors import UsageError
from prefbench.provenance import portable_path
from prefbench.record import RUN_SCHEMA_VERSION, RunRecord
from prefbench.store import (
    RUN_FILE,
    SAMPLES_FILE,
    RunLock,
    SampleWriter,
    read_record,
    read_samples,
    samples_sha256,
    write_record,
)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def now() -> str:
    """The time a record states (UTC, ISO 8601, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def unscored(rows: dict, key: tuple[str, int]) -> bool:
    """Whether the image ``key`` still needs a score: it has no row, or a retryable one (a
    server down, a crashed batch)."""
    row = rows.get(key)
    return row is None or bool(row.get("retryable"))


def refuse_symlinked_folders(run_dir: Path, inside: Path | None) -> None:
    """A run folder (or, under the results root, a folder between the root and it) that is a
    symlink would send every write elsewhere: refuse it."""
    folders = [run_dir]
    if inside is not None:
        folders += [p for p in run_dir.parents if inside in p.parents]
    for folder in folders:
        if folder.is_symlink():
            raise UsageError(f"{folder} is a symlink; prefbench never writes a run through one "
                             "(use a real folder, or --out)")


def previous_run(run_dir: Path, config_hash: str, kind: str = "scoring") -> RunRecord | None:
    """The record a run folder already holds for this configuration (None: a new folder); a
    UsageError for a record this prefbench cannot read, another configuration or kind of run, or
    samples without a record."""
    run_path, samples_path = run_dir / RUN_FILE, run_dir / SAMPLES_FILE
    if run_path.exists() or run_path.is_symlink():
        previous = read_record(run_path)
        if previous.newer_than_this:
            raise UsageError(f"{run_path} has schema version {previous.schema_version!r}, newer than this "
                             f"prefbench writes ({RUN_SCHEMA_VERSION}); upgrade prefbench, or use another --out")
        if previous.config_hash != config_hash or previous.kind != kind:
            what = f"a {previous.kind} run" if previous.kind != kind else "a run"
            raise UsageError(
                f"{run_dir} holds {what} with a different configuration (config hash "
                f"{str(previous.config_hash)[:8]} vs {config_hash[:8]}); use another --out or delete it"
            )
        return previous
    if samples_path.is_symlink() or (samples_path.exists() and samples_path.stat().st_size):
        raise UsageError(f"{run_dir} has samples but no run.json; use another --out or delete it")
    return None


def samples_untouched(previous: RunRecord, samples_path: Path) -> bool:
    """Whether samples.jsonl is what ``previous`` recorded: its size, and (for records since it
    exists) its content hash, so an edited file of the same length is recomputed, not answered
    from the old record."""
    st = os.lstat(samples_path) if samples_path.exists() or samples_path.is_symlink() else None
    untouched = bool(st and stat.S_ISREG(st.st_mode) and previous.samples_bytes == st.st_size)
    if untouched and previous.samples_sha256:
        untouched = previous.samples_sha256 == samples_sha256(samples_path)
    return untouched


def record_dir(run_dir: Path) -> str:
    """How a record names its folder: as given when relative, in portable form when absolute."""
    return portable_path(run_dir.absolute()) if run_dir.is_absolute() else str(run_dir)


class RunFolder:
    """A locked run folder and the record it already holds (``previous``; None for a new folder)."""

    def __init__(self, path: Path, config_hash: str, kind: str, previous: RunRecord | None,
                 log: Callable[[str], None]):
        self.path, self.config_hash, self.kind, self.previous, self.log = path, config_hash, kind, previous, log
        self.run_file, self.samples_file = path / RUN_FILE, path / SAMPLES_FILE

    @classmethod
    @contextmanager
    def open(cls, path: Path, config_hash: str, kind: str = "scoring", *, results_root: Path | None = None,
             wait: bool = False, log: Callable[[str], None] = _stderr) -> Iterator[RunFolder]:
        """Refuse a symlinked folder (and, under ``results_root``, a symlinked folder on the way),
        take the folder's lock (``wait``: for another writer to finish) and read its record."""
        path = Path(path)
        refuse_symlinked_folders(path, inside=results_root)
        lock = RunLock(path).acquire(wait=wait, log=log)  # one writer per run folder
        try:
            yield cls(path, config_hash, kind, previous_run(path, config_hash, kind=kind), log)
        finally:
            lock.release()

    @property
    def record_dir(self) -> str:
        return record_dir(self.path)

    @property
    def created(self) -> str:
        """When the folder was first written (now, for a new one)."""
        return (self.previous.created if self.previous else None) or now()

    def cached_answer(self, options_key: str, options: dict) -> RunRecord | None:
        """The finished record, when it is complete, was computed with the same ``options`` (the
        record's ``options_key`` block) and its samples are untouched; marked ``cached`` and
        naming the folder it is in now (results move). None: the run has work to do."""
        prev = self.previous
        if not (prev and prev.complete and prev.get(options_key) == options
                and samples_untouched(prev, self.samples_file)):
            return None
        self.log(f"cached: {self.path} is complete; nothing to score")
        prev.cached = True
        prev.run_dir = self.record_dir
        return prev

    def rows(self) -> dict[tuple[str, int], dict]:
        """The sample rows so far (a torn last line trimmed, bad lines set aside)."""
        return read_samples(self.samples_file, log=self.log)

    def begin(self, record: RunRecord, seed_rows: list[dict] | None = None) -> bool:
        """A new folder gets its ``running`` record (and ``seed_rows``, rows scored elsewhere,
        before anything is scored); a folder being resumed keeps its record until the run ends.
        Whether rows were seeded."""
        if self.previous:
            return False
        self.write(record)
        if seed_rows:
            writer = SampleWriter(self.samples_file)
            try:
                writer.write(seed_rows)
            finally:
                writer.close()
            return True
        return False

    @contextmanager
    def scoring(self, record: RunRecord) -> Iterator[SampleWriter]:
        """The sample writer; a KeyboardInterrupt marks the record ``interrupted`` (written, so
        the next start resumes) before it propagates."""
        writer = SampleWriter(self.samples_file)
        try:
            yield writer
        except KeyboardInterrupt:
            record.status = "interrupted"
            self.write(record)
            self.log(f"interrupted; rerun the same command to resume ({self.path})")
            raise
        finally:
            writer.close()

    def throughput(self, scored: int, wall: float) -> dict[str, Any]:
        """This session's speed; a session that scored nothing keeps the last measured one."""
        prev = self.previous.throughput if self.previous and self.previous.throughput else None
        return {"images_scored_this_session": scored,
                "wall_s": round(wall, 3) if scored else (prev.wall_s if prev else None),
                "images_per_s": round(scored / wall, 3) if scored and wall > 0 else (prev.images_per_s if prev else None)}

    def samples_fingerprint(self) -> dict[str, Any]:
        """``samples_bytes`` and ``samples_sha256`` of samples.jsonl as it is now (what a cached
        answer later checks)."""
        exists = self.samples_file.exists()
        return {"samples_bytes": self.samples_file.stat().st_size if exists else 0,
                "samples_sha256": samples_sha256(self.samples_file) if exists else None}

    def finish(self, record: RunRecord, complete: bool, results: dict[str, Any]) -> RunRecord:
        """The end of a session: ``complete`` or ``incomplete`` (rows missing or retryable), the
        time, then ``results`` in order; written atomically."""
        record.status = "complete" if complete else "incomplete"
        record.finished = now()
        record.update(results)
        self.write(record)
        return record

    def write(self, record: RunRecord) -> None:
        write_record(self.run_file, record)
