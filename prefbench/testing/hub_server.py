"""A hub-shaped HTTP server on 127.0.0.1 that serves local folders as Hugging Face repositories.

Point ``HF_ENDPOINT`` at it and ``huggingface_hub`` (hence ``prefbench download``) downloads from
it as from the hub, offline: for tests, and for a smoke test of a download before the real one.

    with HubServer({"owner/name": folder}) as hub:        # a dataset repository
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": tmp}     # then: prefbench download ... in that env

or from a shell: ``python -m prefbench.testing.hub_server FOLDER --repo-id owner/name``.

It answers what ``huggingface_hub``'s ``snapshot_download`` and ``hf_hub_download`` ask (read from
the source of huggingface_hub 2.4.0, and run against it in tests/core/test_download.py; older
releases list the files from the info's ``siblings`` rather than the tree listing, which this
server answers too, untested):

- ``GET /api/{models|datasets|spaces}/{repo_id}[/revision/{rev}]``: the repository's info, ``sha``
  (the commit) and ``siblings`` (``?blobs=true`` adds ``size``, ``blobId`` and ``lfs``);
- ``GET /api/{type}s/{repo_id}/tree/{rev}[/{path}]``: the file listing (``?recursive=true``),
  with ``oid``, ``size`` and ``lfs``, paginated by a ``Link: <...>; rel="next"`` header;
- ``HEAD /[datasets/|spaces/]{repo_id}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (the
  git blob sha1; the sha256 for a file stored as LFS, also in ``X-Linked-Etag``, with
  ``X-Linked-Size``), ``Content-Length``, ``Accept-Ranges``;
- ``GET`` on the same: the bytes, ``Range: bytes=N-`` / ``N-M`` answered with 206.

- ``GET /api/agent-harnesses``: an empty registry (huggingface_hub 2.x asks for it to build its
  user agent).

Errors carry the hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``). The revisions are ``main`` and the commit, a hash of the files' paths and
contents (it changes when a file does; :meth:`HubServer.refresh` re-reads the folders). Files
stored as LFS are those the hub's default ``.gitattributes`` puts there (archives, parquet,
images, ...) and any file of 10 MiB or more. Every request is recorded in :attr:`HubServer.requests`;
a request it has no answer for is also in :attr:`HubServer.unhandled`. The server stops on
:meth:`HubServer.stop`, on leaving the ``with`` block, or after ``max_seconds``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

#: file name endings the hub's default .gitattributes stores with LFS (a subset that covers datasets)
LFS_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".zst", ".parquet", ".arrow", ".bin", ".npy",
                ".npz", ".pt", ".pth", ".safetensors", ".h5", ".pkl", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".mp4")
LFS_MIN_SIZE = 10 * 1024 * 1024
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
SKIP_DIRS = {".git", ".cache"}
CHUNK = 1024 * 1024


def git_blob_oid(path: Path) -> tuple[str, str, int]:
    """(git blob sha1, sha256, size) of a file, in one pass."""
    size = path.stat().st_size
    sha1 = hashlib.sha1(b"blob %d\0" % size)
    sha256 = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha1.update(chunk)
            sha256.update(chunk)
    return sha1.hexdigest(), sha256.hexdigest(), size


def stored_as_lfs(path: str, size: int) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    return size >= LFS_MIN_SIZE or name.endswith(LFS_SUFFIXES) or ".tar." in name


@dataclass(frozen=True)
class RepoFile:
    path: str
    size: int
    oid: str  # git blob sha1
    sha256: str
    lfs: bool


class Repo:
    """A folder served as one repository at one commit."""

    def __init__(self, repo_id: str, folder: Path, repo_type: str):
        self.repo_id, self.folder, self.repo_type = repo_id, Path(folder), repo_type
        self.refresh()

    def refresh(self) -> None:
        files = {}
        for p in sorted(self.folder.rglob("*")):
            rel = p.relative_to(self.folder).as_posix()
            if p.is_symlink() or not p.is_file() or SKIP_DIRS & set(rel.split("/")[:-1]):
                continue
            oid, sha256, size = git_blob_oid(p)
            files[rel] = RepoFile(rel, size, oid, sha256, stored_as_lfs(rel, size))
        self.files = files
        tree = json.dumps([[f.path, f.oid] for f in files.values()]).encode()
        self.sha = hashlib.sha1(b"prefbench-hub\0" + tree).hexdigest()

    def directories(self) -> list[str]:
        dirs = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            dirs.update("/".join(parts[:k]) for k in range(1, len(parts) + 1))
        return sorted(dirs)


class HubServer:
    """Serves ``{repo_id: folder}`` on ``http://127.0.0.1:PORT`` (:attr:`url`) as repositories of
    ``repo_type``. ``page_size``: entries per page of the tree listing. ``truncate_once``:
    ``{path: n}`` sends only the first n bytes of that file's first full GET, then closes the
    connection (a dropped transfer, to test resuming)."""

    def __init__(self, repos: dict[str, str | Path], repo_type: str = "dataset", *, page_size: int = 1000,
                 truncate_once: dict[str, int] | None = None, max_seconds: float = 600.0):
        if repo_type not in PREFIX:
            raise ValueError(f"repo_type must be one of {', '.join(PREFIX)}, got {repo_type!r}")
        self.repo_type = repo_type
        self.repos = {rid: Repo(rid, Path(folder), repo_type) for rid, folder in repos.items()}
        self.page_size = max(1, int(page_size))
        self.truncate_once = dict(truncate_once or {})
        self.max_seconds = max_seconds
        self.requests: list[dict] = []
        self.unhandled: list[str] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- life cycle
    def start(self) -> HubServer:
        handler = type("HubHandler", (_Handler,), {"hub": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="prefbench-hub-server", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the hub server is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def refresh(self) -> None:
        """Re-read the folders (a new commit when a file changed)."""
        for repo in self.repos.values():
            repo.refresh()

    def file_gets(self, path: str | None = None) -> int:
        """How many GET requests fetched file bytes (of ``path`` only, when given)."""
        return sum(1 for r in self.requests if r["method"] == "GET" and r["kind"] == "resolve"
                   and r["status"] in (200, 206) and (path is None or r["path"] == path))

    def _record(self, **entry) -> None:
        with self._lock:
            self.requests.append(entry)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a connection left open never keeps the process alive
    block_on_close = False  # stop() does not wait for idle keep-alive connections


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a connection may sit idle
    server_version = "prefbench-hub/1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name; quiet by default
        pass

    # -- plumbing
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, *, head: bool = False) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _json(self, obj, headers: dict | None = None) -> None:
        self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: str | None, message: str, *, head: bool = False, commit: str | None = None):
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(status, json.dumps({"error": message}).encode(), headers, head=head)

    def _find_repo(self, segments: list[str], repo_type: str) -> tuple[Repo | None, list[str]]:
        for n in (2, 1):
            rid = "/".join(unquote(s) for s in segments[:n])
            repo = self.hub.repos.get(rid)
            if repo is not None and repo.repo_type == repo_type and len(segments) >= n:
                return repo, segments[n:]
        return None, segments

    def _revision(self, repo: Repo, rev: str, head: bool = False) -> bool:
        if rev in ("main", repo.sha):
            return True
        self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head=head)
        return False

    # -- verbs
    def do_HEAD(self):
        self._dispatch(head=True)

    def do_GET(self):
        self._dispatch(head=False)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        self._unhandled()

    def _unhandled(self, head: bool = False) -> None:
        self.hub.unhandled.append(f"{self.command} {self.path}")
        self.hub._record(method=self.command, kind="unhandled", path=self.path, status=404, range=None)
        self._error(404, None, f"prefbench's hub server does not answer {self.command} {urlsplit(self.path).path}",
                    head=head)

    def _dispatch(self, head: bool) -> None:
        split = urlsplit(self.path)
        segments = [s for s in split.path.split("/") if s]
        query = parse_qs(split.query)
        if segments == ["api", "agent-harnesses"] and not head:  # huggingface_hub 2.x's user-agent registry
            self.hub._record(method="GET", kind="agent-harnesses", path=None, status=200, range=None)
            return self._json({"standardEnvVars": [], "harnesses": {}})
        if segments and segments[0] == "api" and len(segments) > 1 and segments[1] in TYPES and not head:
            return self._api(segments[2:], TYPES[segments[1]], query, split.path)
        repo_type = "model"
        if segments and segments[0] in ("datasets", "spaces"):
            repo_type, segments = TYPES[segments[0]], segments[1:]
        repo, rest = self._find_repo(segments, repo_type)
        if repo is not None and len(rest) >= 3 and rest[0] == "resolve" and repo_type == self.hub.repo_type:
            return self._resolve(repo, unquote(rest[1]), "/".join(unquote(s) for s in rest[2:]), head)
        if repo is None and len(segments) >= 3 and "resolve" in segments[1:3]:
            self.hub._record(method=self.command, kind="resolve", path=None, status=404, range=None)
            return self._error(404, "RepoNotFound", "Repository not found", head=head)
        return self._unhandled(head)

    def _api(self, segments: list[str], repo_type: str, query: dict, raw_path: str) -> None:
        repo, rest = self._find_repo(segments, repo_type)
        if repo is None:
            self.hub._record(method="GET", kind="info", path=None, status=404, range=None)
            return self._error(404, "RepoNotFound", "Repository not found")
        if not rest or (rest[0] == "revision" and len(rest) == 2):
            self.hub._record(method="GET", kind="info", path=None, status=200, range=None)
            if rest and not self._revision(repo, unquote(rest[1])):
                return None
            return self._json(self._info(repo, blobs=_true(query.get("blobs"))))
        if rest[0] == "tree" and len(rest) >= 2:
            self.hub._record(method="GET", kind="tree", path=None, status=200, range=None)
            if not self._revision(repo, unquote(rest[1])):
                return None
            return self._tree(repo, "/".join(unquote(s) for s in rest[2:]), query, raw_path)
        return self._unhandled()

    def _info(self, repo: Repo, blobs: bool) -> dict:
        siblings = []
        for f in repo.files.values():
            entry = {"rfilename": f.path}
            if blobs:
                entry.update(size=f.size, blobId=f.oid)
                if f.lfs:
                    entry["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": 134}
            siblings.append(entry)
        owner = repo.repo_id.split("/")[0] if "/" in repo.repo_id else None
        return {"_id": repo.sha[:24], "id": repo.repo_id, "author": owner, "sha": repo.sha, "private": False,
                "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
                "lastModified": "2025-01-01T00:00:00.000Z", "createdAt": "2025-01-01T00:00:00.000Z",
                "usedStorage": sum(f.size for f in repo.files.values()), "siblings": siblings}

    def _tree(self, repo: Repo, base: str, query: dict, raw_path: str) -> None:
        recursive = _true(query.get("recursive"))
        prefix = base.rstrip("/") + "/" if base else ""
        if base and base not in repo.files and base not in repo.directories():
            return self._error(404, "EntryNotFound", f"{base} does not exist on main", commit=repo.sha)

        def wanted(path: str) -> bool:
            return path.startswith(prefix) and (recursive or "/" not in path[len(prefix):])

        entries = [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
                   for d in repo.directories() if wanted(d)]
        for f in repo.files.values():
            if wanted(f.path):
                entry = {"type": "file", "oid": f.oid, "size": f.size, "path": f.path}
                if f.lfs:
                    entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
                entries.append(entry)
        try:
            start = max(0, int((query.get("cursor") or ["0"])[0]))
        except ValueError:
            start = 0
        page = entries[start:start + self.hub.page_size]
        headers = {}
        if start + self.hub.page_size < len(entries):
            params = f"recursive={str(recursive).lower()}&expand=false&cursor={start + self.hub.page_size}"
            headers["Link"] = f'<{self.hub.url}{raw_path}?{params}>; rel="next"'
        self._json(page, headers)

    def _resolve(self, repo: Repo, rev: str, path: str, head: bool) -> None:
        entry = {"method": self.command, "kind": "resolve", "path": path, "range": self.headers.get("Range")}
        if not self._revision(repo, rev, head):
            return self.hub._record(**entry, status=404)
        f = repo.files.get(path)
        if f is None:
            self.hub._record(**entry, status=404)
            return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", head=head, commit=repo.sha)
        etag = f'"{f.sha256}"' if f.lfs else f'"{f.oid}"'
        headers = {"X-Repo-Commit": repo.sha, "ETag": etag, "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if f.lfs:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(f.size)})
        start, end, status = 0, f.size - 1, 200
        rng = self.headers.get("Range")
        if rng and not head:
            parsed = _parse_range(rng, f.size)
            if parsed is None:
                self.hub._record(**entry, status=416)
                return self._send(416, b"", {**headers, "Content-Range": f"bytes */{f.size}"})
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{f.size}"
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        self.hub._record(**entry, status=status)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return None
        limit = length
        with self.hub._lock:
            cut = self.hub.truncate_once.pop(path, None) if status == 200 else None
        if cut is not None:
            limit = min(limit, cut)
            self.close_connection = True
        with open(repo.folder / path, "rb") as fh:
            fh.seek(start)
            while limit > 0:
                chunk = fh.read(min(CHUNK, limit))
                if not chunk:
                    break
                self.wfile.write(chunk)
                limit -= len(chunk)
        self.wfile.flush()
        return None


def _true(values) -> bool:
    return bool(values) and str(values[0]).lower() in ("1", "true", "yes")


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":  # the last N bytes
            n = int(last)
            return (max(0, size - n), size - 1) if n > 0 and size else None
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def resolve_url(url: str, repo_id: str, path: str, revision: str = "main", repo_type: str = "dataset") -> str:
    """The ``resolve`` URL of a file, as huggingface_hub builds it."""
    return f"{url}/{PREFIX[repo_type]}{repo_id}/resolve/{quote(revision, safe='')}/{quote(path)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prefbench.testing.hub_server",
        description="Serve a folder as a Hugging Face repository on 127.0.0.1 (offline smoke tests of downloads).")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repo-id", required=True, help="owner/name the folder is served as")
    parser.add_argument("--repo-type", default="dataset", choices=sorted(PREFIX))
    parser.add_argument("--seconds", type=float, default=3600.0, help="stop after this many seconds (default 3600)")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    with HubServer({args.repo_id: args.folder}, args.repo_type, max_seconds=args.seconds) as hub:
        n = len(hub.repos[args.repo_id].files)
        print(f"serving {args.folder} as {args.repo_type} {args.repo_id} ({n} files, commit "
              f"{hub.repos[args.repo_id].sha[:12]})\nexport HF_ENDPOINT={hub.url}", flush=True)
        try:
            while hub.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
