"""``prefbench download``: fetch the files a dataset split needs from the hub into a data dir.

The files are those the dataset's :class:`~prefbench.data.Download` manifest names for the split
(globs over the repository: our reading of it). ``huggingface_hub``'s ``snapshot_download`` fetches
them at one resolved commit into ``DATA_DIR`` (``local_dir``): a file already there at that commit
is not fetched again, and a dropped transfer resumes with HTTP ranges as far as the installed
``huggingface_hub`` does. Each file is then checked against the repository's own record: its size,
and its sha256 (a file stored with LFS) or its git blob id (any other file).

Archives the manifest names (zip, tar, tar.gz/bz2/xz, and tars split in parts such as
``images.tar.gz.00``, ``.01``, ...) are unpacked into the data dir under the rule every path of
prefbench follows: nothing is written outside the data dir. A member with an absolute path or a
``..`` component, a link that points outside, or a device or FIFO refuses the archive, naming it and
the member; a zip is checked whole before anything of it is written, a tar member by member. The
unpacked size is capped (``PREFBENCH_MAX_UNPACK_BYTES``, 200 GiB by default), from what the archive
declares and from the bytes actually written. An archive is unpacked once: a marker under
``DATA_DIR/.cache/prefbench/unpacked/`` remembers its size and sha256.

``DATA_DIR/prefbench_download.json`` records what was fetched: the dataset, the split, the
repository, the commit, every file with its size and sha256, the archives, whether the split
loads, the time and prefbench's version.

Without the hub (``HF_HUB_OFFLINE``, no connection, ``huggingface_hub`` not installed) it stops
with exit 2 and says which files of which repository to put where.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from prefbench.data.archives import archive_groups, unpack
from prefbench.errors import DataError, MissingDataError, PrefbenchError, UsageError
from prefbench.hub_io import UNREACHABLE, _offline, _progress_bars, _unreachable  # noqa: F401  (shared with pinned_download)

MANIFEST_NAME = "prefbench_download.json"
SCHEMA = 1
#: where the unpack markers and the hash cache live, under the data dir (beside huggingface_hub's .cache/huggingface)
STATE_DIR = Path(".cache") / "prefbench"
DEFAULT_ENDPOINT = "https://huggingface.co"
CHUNK = 1024 * 1024


# -- what to fetch

@dataclass(frozen=True)
class Plan:
    """One dataset split's download: the spec, the split and the globs of its files."""

    spec: object  # DatasetSpec
    split: str
    globs: list[str]

    @property
    def download(self):
        return self.spec.download

    @property
    def github_files(self) -> tuple:
        """The split's files from a GitHub repository (:class:`prefbench.pinned.PinnedFile`)."""
        gh = self.download.github
        return tuple(gh.get(self.split) or gh.get("*") or ())

    def is_archive(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.download.archives)


def plan(name: str, split: str | None = None) -> Plan:
    """The files ``name``/``split`` needs; a :class:`UsageError` (exit 2) for a dataset with no
    download manifest, an unknown split, or a split the manifest does not cover."""
    from prefbench.data import dataset_info, datasets

    spec = dataset_info(name)
    if spec.download is None:
        if not spec.needs_data_dir:
            raise UsageError(f"dataset {name!r} needs no download: prefbench generates it offline "
                             f"(`prefbench run --dataset {name}` needs no --data-dir)")
        can = sorted(n for n, s in datasets().items() if s.download is not None)
        raise UsageError(f"dataset {name!r} has no known download (its spec has no download manifest): put its files "
                         f"under the data dir yourself, as docs/datasets.md describes. Datasets prefbench can download: "
                         f"{', '.join(can) or 'none'}")
    split = split or spec.default_split
    if split not in spec.splits:
        raise UsageError(f"dataset {name!r} has no split {split!r}; splits: {', '.join(spec.splits)}")
    globs = spec.download.for_split(split)
    if not globs:
        raise UsageError(f"dataset {name!r} has no known files for split {split!r} (its download manifest covers: "
                         f"{', '.join(sorted(spec.download.patterns))})")
    return Plan(spec, split, globs)


def repo_url(download, endpoint: str | None = None) -> str:
    prefix = {"dataset": "datasets/", "space": "spaces/"}.get(download.repo_type, "")
    return f"{(endpoint or _endpoint()).rstrip('/')}/{prefix}{download.repo_id}"


def instructions(p: Plan, data_dir: str | Path, endpoint: str | None = None) -> str:
    """Which files of which repository to put where, for a user without the hub."""
    data_dir = Path(data_dir)
    dl = p.download
    lines = [f"put these files of the {dl.repo_type} repository {dl.repo_id} ({repo_url(dl, endpoint)}) under "
             f"{data_dir}, at the same paths:"]
    width = max(len(g) for g in p.globs)
    for glob in p.globs:
        unpack = f"  (an archive: unpack it into {data_dir})" if p.is_archive(glob) else ""
        lines.append(f"  {glob:<{width}}  ->  {data_dir / glob}{unpack}")
    for pf in p.github_files:
        from prefbench.pinned_download import github_url

        lines.append(f"  {pf.local_name}  <-  {github_url(pf.repo, pf.revision, pf.names[0])} (sha256 {pf.sha256})")
    if dl.note:
        lines.append(f"  note: {dl.note}")
    lines.append(f"then: prefbench run --dataset {p.spec.name} --split {p.split} --data-dir {data_dir} ...")
    return "\n".join(lines)


# -- the download

def download(name: str, split: str | None = None, data_dir: str | Path | None = None, *, revision: str | None = None,
             progress: bool = True, log: Callable[[str], None] | None = None, endpoint: str | None = None,
             token: str | bool | None = None) -> dict:
    """Fetch ``name``/``split`` into ``data_dir``, unpack its archives, write and return the manifest.

    ``revision``: a branch, tag or commit of the repository (default: its main branch).
    ``endpoint``: the hub's URL (default: ``HF_ENDPOINT``, else huggingface.co). ``log`` gets one
    line per step (default: stderr)."""
    if data_dir is None:
        raise UsageError("download needs --data-dir: the folder the files go to")
    p = plan(name, split)
    data_dir = Path(data_dir).expanduser()
    if data_dir.exists() and not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir} exists and is not a folder")
    log = log or _stderr
    dl = p.download
    hub = _import_hub(p, data_dir)
    endpoint = (endpoint or hub.constants.ENDPOINT).rstrip("/")
    if _offline(hub):
        raise MissingDataError(f"cannot reach the hub (HF_HUB_OFFLINE is set): {instructions(p, data_dir, endpoint)}")

    # 1. the commit and the repository's record of each file
    try:
        info = hub.HfApi(endpoint=endpoint, token=token).repo_info(dl.repo_id, repo_type=dl.repo_type,
                                                                  revision=revision, files_metadata=True)
    except Exception as exc:  # noqa: BLE001 - classified below; anything unexpected is re-raised
        raise _hub_error(exc, p, data_dir, endpoint, revision) from None
    commit = info.sha
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    wanted = sorted(hub.utils.filter_repo_objects(list(siblings), allow_patterns=p.globs))
    if not wanted:
        raise UsageError(
            f"{dl.repo_id} at {commit[:12]} has no file matching {', '.join(p.globs)}: prefbench's reading of the "
            f"repository may be out of date. Otherwise, {instructions(p, data_dir, endpoint)}")
    for name in wanted:  # a glob's * matches "/" and "..": a repository's file name must stay under DIR
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or "\0" in name or (len(name) > 1 and name[0].isalpha() and name[1] == ":"):
            raise DataError(f"{dl.repo_id} at {commit[:12]} lists a file named {name!r}, which would be written "
                            "outside the data dir ('..' or an absolute path); refused, nothing fetched", data_dir)
    for glob in p.globs:
        if not any(fnmatch.fnmatchcase(f, glob) for f in wanted):
            log(f"warning: {dl.repo_id} has no file matching {glob}")
    total = sum(_expected_size(siblings[f]) or 0 for f in wanted)
    log(f"{p.spec.name}/{p.split}: {len(wanted)} file{'s' * (len(wanted) != 1)} ({human_size(total)}) from "
        f"{dl.repo_id} at {commit[:12]} into {data_dir}")

    # 2. fetch (huggingface_hub skips what is there at this commit)
    data_dir.mkdir(parents=True, exist_ok=True)
    before = {f: _stat_key(data_dir / f) for f in wanted}
    try:
        with _progress_bars(hub, progress):
            hub.snapshot_download(dl.repo_id, repo_type=dl.repo_type, revision=commit, local_dir=str(data_dir),
                                  allow_patterns=p.globs, endpoint=endpoint, token=token)
    except Exception as exc:  # noqa: BLE001
        raise _hub_error(exc, p, data_dir, endpoint, revision, during_fetch=True) from None

    # 3. check each file against the repository's record
    hashes = _HashCache(data_dir)
    files = []
    for path in wanted:
        local = data_dir / path
        if not local.is_file():
            raise DataError(f"{path} was not fetched (huggingface_hub reported no error); run the command again", local)
        size, sha256, git_oid = hashes.get(local, path)
        record = siblings[path]
        expected, lfs = _expected_size(record), getattr(record, "lfs", None)
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
                      "fetched": before[path] != _stat_key(local)})
    hashes.save()
    fetched = sum(f["fetched"] for f in files)
    log(f"{fetched} fetched, {len(files) - fetched} already there; sizes and hashes match the repository's")
    files += _github_files(p, data_dir, log)

    # 4. unpack the archives
    by_path = {f["path"]: f for f in files}
    archives = []
    for stem, parts in archive_groups([f for f in wanted if p.is_archive(f)]).items():
        archives.append(unpack_recorded(data_dir, stem, [by_path[q] for q in parts], log=log))

    # 5. does the split load now?
    loads = check_loads(p.spec.name, p.split, data_dir)
    if loads["ok"]:
        images = (f", {loads['images_present']} of {loads['images']} images present" if loads.get("images") else "")
        log(f"loads: {loads['items']} items{images}")
    else:
        log(f"does not load yet: {loads['error']}")

    from prefbench import __version__
    from prefbench.provenance import redact_url

    manifest = {
        "prefbench_download": SCHEMA, "dataset": p.spec.name, "split": p.split, "repo_id": dl.repo_id,
        "repo_type": dl.repo_type, "revision": commit, "requested_revision": revision or "main",
        "endpoint": redact_url(endpoint), "patterns": p.globs, "note": dl.note, "files": files, "archives": archives,
        "load": loads, "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "prefbench_version": __version__, "huggingface_hub_version": getattr(hub, "__version__", None),
    }
    write_manifest(data_dir, manifest)
    log(f"wrote {data_dir / MANIFEST_NAME}")
    return manifest


def _github_files(p: Plan, data_dir: Path, log: Callable[[str], None]) -> list[dict]:
    """The split's GitHub files at their pinned commits, each checked against its pinned sha256 and size
    (a mismatch is removed, exit 2); one fetched by an earlier download and unchanged is kept."""
    from prefbench.pinned_download import github_file

    if not p.github_files:
        return []
    try:
        earlier = json.loads((data_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        old = {f["path"]: f for f in earlier.get("files", []) if isinstance(f, dict) and f.get("repo")}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        old = {}
    out = []
    for pf in p.github_files:
        rec = github_file(pf, data_dir, old, log)
        out.append({"path": rec["path"], "size": rec["size"], "sha256": rec["sha256"], "lfs": False,
                    "checked": "pinned sha256", "fetched": rec["fetched"], "repo": rec["repo"],
                    "revision": rec["revision"], "mtime_ns": rec["mtime_ns"]})
    return out


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
    _write_json(path, {**manifest, "other_downloads": others} if others else manifest)
    return path


def check_loads(name: str, split: str, data_dir: Path) -> dict:
    """Whether the split loads from ``data_dir`` (annotation only), with its item count and how many
    of the image files it names are there; never raises."""
    from prefbench.data import load_dataset

    try:
        loaded = load_dataset(name, split, data_dir, with_images=False)
    except PrefbenchError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a report, not a crash
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    out = {"ok": True, "items": len(loaded.items)}
    paths = [ref.path for item in loaded.items for ref in item.images if ref.path is not None]
    if paths:
        out.update(images=len(paths), images_present=sum(1 for q in paths if Path(q).is_file()))
    return out


# -- the hub, imported only here

def _import_hub(p: Plan, data_dir: Path):
    try:
        import huggingface_hub
        import huggingface_hub.constants
        import huggingface_hub.utils
    except ImportError:
        raise MissingDataError(
            "downloading needs huggingface_hub, which is not installed (pip install 'prefbench[hub]'). "
            f"Without it: {instructions(p, data_dir, os.environ.get('HF_ENDPOINT') or DEFAULT_ENDPOINT)}") from None
    return huggingface_hub


def _endpoint() -> str:
    hub = sys.modules.get("huggingface_hub.constants")
    return getattr(hub, "ENDPOINT", None) or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT


def _hub_error(exc: Exception, p: Plan, data_dir: Path, endpoint: str, revision: str | None,
               during_fetch: bool = False) -> Exception:
    """The prefbench error (exit 2) for what the hub answered, or ``exc`` itself if it is no hub error."""
    from huggingface_hub import utils as hub_utils

    dl = p.download
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, PrefbenchError):
        return exc
    if isinstance(exc, hub_utils.RevisionNotFoundError):
        return UsageError(f"the {dl.repo_type} repository {dl.repo_id} has no revision {revision!r} ({first})")
    if isinstance(exc, hub_utils.RepositoryNotFoundError):  # gated and private repositories too
        return MissingDataError(
            f"the hub at {endpoint} has no {dl.repo_type} repository {dl.repo_id} that this machine may read ({first}); "
            "if it is gated or private, accept its terms on the hub and log in (`hf auth login` or HF_TOKEN). "
            f"Or get the files yourself: {instructions(p, data_dir, endpoint)}")
    if _unreachable(exc):
        kept = (" The files fetched so far stay there: run the command again to resume." if during_fetch else "")
        return MissingDataError(f"cannot reach the hub at {endpoint} ({type(exc).__name__}: {first}).{kept} "
                                f"Without the hub: {instructions(p, data_dir, endpoint)}")
    if isinstance(exc, hub_utils.HfHubHTTPError):
        return UsageError(f"the hub at {endpoint} refused the download of {dl.repo_id}: {first}")
    if isinstance(exc, OSError) and during_fetch:  # huggingface_hub's size check of a transfer, a full disk
        return DataError(f"the download stopped: {exc.strerror or first}. The files fetched so far stay there: "
                         "run the command again to resume", data_dir)
    return exc


def _expected_size(record) -> int | None:
    lfs = getattr(record, "lfs", None)
    size = getattr(lfs, "size", None) if lfs is not None else None
    return size if size is not None else getattr(record, "size", None)


def _stat_key(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _stderr(line: str) -> None:
    print(f"prefbench: {line}", file=sys.stderr, flush=True)


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class _HashCache:
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
            _write_json(self.path, self.entries)


# -- archives


# -- archives (the unpacking itself: prefbench.data.archives)

def unpack_recorded(data_dir: Path, name: str, parts: list[dict], *, log: Callable[[str], None] = _stderr) -> dict:
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
    _write_json(marker, {"parts": identity, **result, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    log(f"{name}: {result['members']} members, {human_size(result['bytes'])}")
    return {"archive": name, "parts": [q["path"] for q in parts], **result, "unpacked": "now"}
