"""The run store: ``run.json`` (the typed record) and ``samples.jsonl`` (one row per image).

Samples are appended and flushed as they are scored. Reading them back validates every row on
its own: only a final line without its newline is a torn write (a kill mid-write), trimmed off;
any other bad line (not JSON, not UTF-8, a row without its keys) is set aside into
``samples.rejected.jsonl`` with its line number, and every good row around it is kept.

Nothing here writes through a symlink: files are opened with ``O_NOFOLLOW`` and must be regular
files, temporaries are created exclusively (``mkstemp``), and ``run.json`` and the report's pages
are replaced atomically (``os.replace`` swaps a planted symlink for a file, never writes its
target). :class:`RunLock` keeps a second process from writing the same run folder.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefbench.errors import DataError, UsageError
from prefbench.provenance import git_commit, package_versions, redact_url  # noqa: F401  (re-exported)
from prefbench.record import RUN_SCHEMA_VERSION, RunRecord, SampleRow  # noqa: F401  (re-exported)

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
#: bad lines found in samples.jsonl on resume, moved here with their line numbers
QUARANTINE_FILE = "samples.rejected.jsonl"
STATUSES = ("ok", "unparsed", "error")

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def open_regular(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that never follows a symlink and accepts only a regular file; a file
    descriptor, or a one-line :class:`UsageError` naming the path."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | _CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno in (errno.EMLINK, errno.ENOTDIR) and Path(path).is_symlink()):
            raise UsageError(f"{path} is a symlink; prefbench never reads or writes a run file through one "
                             "(remove it)") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{path} is not a regular file; remove it")
    return fd


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: an exclusive temporary in the same folder, fsynced, then
    ``os.replace`` (which replaces a symlink at ``path`` itself, never its target)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the file it replaces was an ordinary one
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    # redact_url: credentials inside a --base-url never reach a record
    write_text_atomic(path, redact_url(json.dumps(data, indent=2, sort_keys=False, allow_nan=True)) + "\n")


def read_run(path: Path) -> dict:
    """Read a run.json (or the run.json inside a run folder)."""
    from prefbench.data._io import read_json

    path = Path(path)
    if path.is_dir():
        path = path / RUN_FILE
    if path.is_symlink():
        raise DataError("run.json is a symlink; prefbench never reads a run file through one", path)
    if not path.is_file():
        raise DataError("no run.json here (is this a prefbench run folder?)", path)
    data = read_json(path)
    if not isinstance(data, dict) or "schema_version" not in data:
        raise DataError("not a prefbench run record (no schema_version)", path)
    return data


def read_record(path: Path) -> RunRecord:
    """The typed record of a run.json (or of the run.json inside a run folder): every reader of
    run records goes through here. A file that is not a record, or a block that is not an object,
    is a :class:`DataError` naming the file; older records upgrade on read (see
    :mod:`prefbench.record`)."""
    path = Path(path)
    data = read_run(path)
    try:
        return RunRecord.read(data)
    except DataError as exc:
        raise DataError(str(exc), path / RUN_FILE if path.is_dir() else path) from None


def write_record(path: Path, record: RunRecord) -> None:
    """Replace ``path`` (a run.json) with ``record``, atomically (never through a symlink)."""
    write_json_atomic(path, record.to_json())


def row_problem(row: Any) -> str | None:
    """Why a parsed samples.jsonl line is not a valid row (None when it is one)."""
    if not isinstance(row, dict):
        return "not a JSON object"
    item_id = row.get("item_id")
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)):
        return "no item_id"
    k = row.get("image_index")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        return "no image_index (an integer >= 0)"
    if row.get("status") not in STATUSES:
        return f"status must be one of {', '.join(STATUSES)}"
    score = row.get("score")
    if row["status"] == "ok" and (isinstance(score, bool) or not isinstance(score, (int, float))
                                  or not math.isfinite(score)):
        return "an ok row needs a finite score"
    return None


def _parse(raw: bytes) -> tuple[dict | None, str | None]:
    try:
        row = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except (json.JSONDecodeError, RecursionError):
        return None, "not valid JSON"
    problem = row_problem(row)
    return (None, problem) if problem else (row, None)


def upgrade_row(row: dict) -> dict:
    """A sample row in today's shape: typed fields that an older row kept in ``detail``
    (:attr:`SampleRow.LEGACY_DETAIL_FIELDS <prefbench.record.SampleRow.LEGACY_DETAIL_FIELDS>`) are
    lifted to the row (the file itself is not rewritten); :meth:`SampleRow.read` does the same for
    the typed row."""
    detail = row.get("detail")
    if isinstance(detail, dict):
        for key in SampleRow.LEGACY_DETAIL_FIELDS:
            if key not in row and key in detail:
                row[key] = detail[key]
    return row


def read_samples(path: Path, repair: bool = True, log: Callable[[str], None] | None = None,
                 strict: bool = False) -> dict[tuple[str, int], dict]:
    """Rows keyed by (item_id, image_index); the last row for a key wins.

    A final line without its newline is a torn write: dropped and, with ``repair``, trimmed off.
    Any other bad line is skipped; with ``repair`` it is moved to :data:`QUARANTINE_FILE` (with
    its line number, and a warning through ``log``) and the file is rewritten without it, so no
    good row after it is lost. ``strict`` raises :class:`DataError` on the first bad line instead
    (for readers that must not change anything, such as the report).
    """
    rows: dict[tuple[str, int], dict] = {}
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return rows
    fd = open_regular(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read()
    lines = data.splitlines(keepends=True)
    torn = bool(lines) and not lines[-1].endswith(b"\n")
    if torn:
        lines = lines[:-1]
    good: list[bytes] = []
    bad: list[tuple[int, bytes, str]] = []
    for lineno, raw in enumerate(lines, 1):
        row, problem = _parse(raw)
        if row is None:
            if strict:
                raise DataError(f"bad row ({problem})", path.name, lineno)
            bad.append((lineno, raw, problem or "invalid"))
            continue
        rows[(str(row["item_id"]), int(row["image_index"]))] = upgrade_row(row)
        good.append(raw)
    if repair and bad:
        _quarantine(path, bad)
        write_bytes_atomic(path, b"".join(good))
        for lineno, _, problem in bad:
            (log or _warn)(f"warning: {path}, line {lineno}: bad row ({problem}); moved to {QUARANTINE_FILE} "
                           "and skipped (the rows around it are kept)")
    elif repair and torn:
        fd = open_regular(path, os.O_RDWR)
        try:
            os.ftruncate(fd, sum(len(x) for x in lines))
        finally:
            os.close(fd)
    return rows


def _warn(msg: str) -> None:
    import sys

    print(msg, file=sys.stderr)


def _quarantine(path: Path, bad: list[tuple[int, bytes, str]]) -> None:
    side = path.with_name(QUARANTINE_FILE)
    fd = open_regular(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        for lineno, raw, problem in bad:
            fh.write(json.dumps({"line": lineno, "problem": problem,
                                 "text": raw.decode("utf-8", errors="replace").rstrip("\n")}) + "\n")


def samples_sha256(path: Path) -> str:
    """sha256 of a samples file (read without following a symlink)."""
    import hashlib

    h = hashlib.sha256()
    with os.fdopen(open_regular(Path(path), os.O_RDONLY), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class SampleWriter:
    """Appends rows and flushes them to disk after every batch (never through a symlink)."""

    def __init__(self, path: Path):
        fd = open_regular(Path(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self.fh = os.fdopen(fd, "a", encoding="utf-8")

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            self.fh.write(redact_url(json.dumps(row, ensure_ascii=False, allow_nan=False, default=str)) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


class RunLock:
    """An exclusive lock on a run folder (``flock`` on the folder itself: no lock file is left
    behind, and a killed holder releases it). A second writer gets a clear error, or waits."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.fd: int | None = None

    def acquire(self, wait: bool = False, log: Callable[[str], None] | None = None) -> RunLock:
        try:
            import fcntl
        except ImportError:  # no flock on this platform: run unlocked
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.run_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                os.close(fd)
                raise UsageError(f"another prefbench process is writing {self.run_dir}; wait for it to finish, "
                                 "or pass --wait") from None
            if log:
                log(f"waiting for another prefbench process writing {self.run_dir} ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
