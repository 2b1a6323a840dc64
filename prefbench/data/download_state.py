"""What a download keeps in the data dir, and the check of each fetched file.

The manifest (``prefbench_download.json``), the hash cache and the unpack markers under
``DATA_DIR/.cache/prefbench/``; :func:`check_fetched` holds every fetched file to the
repository's record (its size, then its sha256 for an LFS file or its git blob id for any
other) and removes one that differs; :func:`unpack_recorded` unpacks an archive once (the
unpacking itself is :mod:`prefbench.data.archives`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from prefbench.data.archives import unpack
from prefbench.errors import DataError

MANIFEST_NAME = "prefbench_download.json"
SCHEMA = 1
#: where the unpack markers and the hash cache live, under the data dir (beside huggingface_hub's .cache/huggingface)
STATE_DIR = Path(".cache") / "prefbench"
CHUNK = 1024 * 1024


def check_fetched(data_dir: Path, wanted: list[str], siblings: dict, before: dict) -> list[dict]:
    """The manifest's record of each fetched file in ``wanted``, checked against the repository's
    record of it (``siblings``); ``before`` holds each file's :func:`stat_key` before the fetch,
    which tells whether it was fetched now. A file that differs is removed (a :class:`DataError`:
    the next run fetches it afresh)."""
    hashes = HashCache(data_dir)
    files = []
    for path in wanted:
        local = data_dir / path
        if not local.is_file():
            raise DataError(f"{path} was not fetched (huggingface_hub reported no error); run the command again", local)
        size, sha256, git_oid = hashes.get(local, path)
        record = siblings[path]
        expected, lfs = expected_size(record), getattr(record, "lfs", None)
        problem = None
        if expected is not None and size != expected:
            problem = f"has {size} bytes, the repository's file {expected}"
        elif lfs is not None and getattr(lfs, "sha256", None) and sha256 != lfs.sha256:
            problem = f"has sha256 {sha256}, the repository's file {lfs.sha256}"
        elif lfs is None and getattr(record, "blob_id", None) and git_oid != record.blob_id:
            problem = f"has git blob id {git_oid}, the repository's file {record.blob_id}"
        if problem:
            local.unlink()
            hashes.forget(path)
            hashes.save()
            raise DataError(f"{problem}; removed it: run the command again to fetch it afresh", local)
        checked = ("sha256" if lfs is not None and getattr(lfs, "sha256", None)
                   else "git-sha1" if getattr(record, "blob_id", None) else "size" if expected is not None else "none")
        files.append({"path": path, "size": size, "sha256": sha256, "lfs": lfs is not None, "checked": checked,
                      "fetched": before[path] != stat_key(local)})
    hashes.save()
    return files


def write_manifest(data_dir: Path, manifest: dict) -> Path:
    """Write ``DATA_DIR/prefbench_download.json``; the records of other dataset splits downloaded into
    the same folder are kept under ``other_downloads``."""
    path = Path(data_dir) / MANIFEST_NAME
    others = []
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(old, dict):
            earlier = [{k: v for k, v in old.items() if k != "other_downloads"}] + list(old.get("other_downloads") or [])
            others = [e for e in earlier if isinstance(e, dict) and "dataset" in e
                      and (e.get("dataset"), e.get("split")) != (manifest["dataset"], manifest["split"])]
    except (OSError, ValueError):
        pass
    write_json(path, {**manifest, "other_downloads": others} if others else manifest)
    return path


def expected_size(record) -> int | None:
    """The size the repository records for a file (its LFS size when it has one)."""
    lfs = getattr(record, "lfs", None)
    size = getattr(lfs, "size", None) if lfs is not None else None
    return size if size is not None else getattr(record, "size", None)


def stat_key(path: Path):
    """What changes when a file is written (inode, size, mtime), or None when it is not there."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def human_size(n: float) -> str:
    """Bytes in decimal units.

    >>> human_size(512), human_size(1_500_000)
    ('512 B', '1.5 MB')
    """
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def stderr_log(line: str) -> None:
    """The download's default log: one ``prefbench:`` line on stderr."""
    print(f"prefbench: {line}", file=sys.stderr, flush=True)


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as JSON atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class HashCache:
    """sha256 and git blob id of the fetched files, kept by (size, mtime) so a rerun does not read
    a large archive again."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / STATE_DIR / "hashes.json"
        try:
            self.entries = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(self.entries, dict):
                self.entries = {}
        except (OSError, ValueError):
            self.entries = {}

    def get(self, local: Path, key: str) -> tuple[int, str, str]:
        st = local.stat()
        hit = self.entries.get(key)
        if isinstance(hit, list) and len(hit) == 4 and hit[:2] == [st.st_size, st.st_mtime_ns]:
            return st.st_size, hit[2], hit[3]
        sha256 = hashlib.sha256()
        git = hashlib.sha1(b"blob %d\0" % st.st_size)
        with open(local, "rb") as fh:
            while chunk := fh.read(CHUNK):
                sha256.update(chunk)
                git.update(chunk)
        self.entries[key] = [st.st_size, st.st_mtime_ns, sha256.hexdigest(), git.hexdigest()]
        return st.st_size, sha256.hexdigest(), git.hexdigest()

    def forget(self, key: str) -> None:
        self.entries.pop(key, None)

    def save(self) -> None:
        with contextlib.suppress(OSError):
            write_json(self.path, self.entries)


def unpack_recorded(data_dir: Path, name: str, parts: list[dict], *, log: Callable[[str], None] = stderr_log) -> dict:
    """Unpack archive ``name`` (its parts: manifest file records) into ``data_dir`` unless its marker
    says it was, from parts of the same sizes and sha256; returns the manifest's record of it."""
    identity = [{"path": q["path"], "size": q["size"], "sha256": q["sha256"]} for q in parts]
    marker = data_dir / STATE_DIR / "unpacked" / (quote(name, safe="") + ".json")
    try:
        done = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        done = None
    if isinstance(done, dict) and done.get("parts") == identity:
        log(f"{name}: unpacked earlier ({done.get('members')} members)")
        return {"archive": name, "parts": [q["path"] for q in parts], "members": done.get("members"),
                "bytes": done.get("bytes"), "unpacked": "earlier"}
    log(f"unpacking {name}" + (f" ({len(parts)} parts)" if len(parts) > 1 else ""))
    result = unpack(data_dir, [data_dir / q["path"] for q in parts], name=name, sizes=[q.get("size") for q in parts])
    write_json(marker, {"parts": identity, **result, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    log(f"{name}: {result['members']} members, {human_size(result['bytes'])}")
    return {"archive": name, "parts": [q["path"] for q in parts], **result, "unpacked": "now"}
