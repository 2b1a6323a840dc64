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

import fnmatch
import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from prefbench.data.archives import archive_groups
from prefbench.data.download_plan import (  # noqa: F401  (repo_url re-exported)
    Plan,
    hub_error,
    import_hub,
    instructions,
    plan,
    repo_url,
)
from prefbench.data.download_state import (  # noqa: F401  (STATE_DIR re-exported: tests import it from here)
    MANIFEST_NAME,
    SCHEMA,
    STATE_DIR,
    check_fetched,
    expected_size,
    human_size,
    stat_key,
    stderr_log,
    unpack_recorded,
    write_manifest,
)
from prefbench.errors import DataError, MissingDataError, PrefbenchError, UsageError
from prefbench.hub_io import UNREACHABLE, _offline, _progress_bars, _unreachable  # noqa: F401  (shared with pinned_download)


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
    log = log or stderr_log
    dl = p.download
    hub = import_hub(p, data_dir)
    endpoint = (endpoint or hub.constants.ENDPOINT).rstrip("/")
    if _offline(hub):
        raise MissingDataError(f"cannot reach the hub (HF_HUB_OFFLINE is set): {instructions(p, data_dir, endpoint)}")

    # 1. the commit and the repository's record of each file
    commit, siblings, wanted = _resolve(hub, p, data_dir, endpoint, revision, token, log)

    # 2. fetch (huggingface_hub skips what is there at this commit)
    data_dir.mkdir(parents=True, exist_ok=True)
    before = {f: stat_key(data_dir / f) for f in wanted}
    try:
        with _progress_bars(hub, progress):
            hub.snapshot_download(dl.repo_id, repo_type=dl.repo_type, revision=commit, local_dir=str(data_dir),
                                  allow_patterns=p.globs, endpoint=endpoint, token=token)
    except Exception as exc:  # noqa: BLE001
        raise hub_error(exc, p, data_dir, endpoint, revision, during_fetch=True) from None

    # 3. check each file against the repository's record
    files = check_fetched(data_dir, wanted, siblings, before)
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


def _resolve(hub, p: Plan, data_dir: Path, endpoint: str, revision: str | None, token, log) -> tuple[str, dict, list[str]]:
    """The commit ``revision`` resolves to, the repository's record of each file, and the files the
    split's globs match (refused when none does, or when a name would leave the data dir)."""
    dl = p.download
    try:
        info = hub.HfApi(endpoint=endpoint, token=token).repo_info(dl.repo_id, repo_type=dl.repo_type,
                                                                  revision=revision, files_metadata=True)
    except Exception as exc:  # noqa: BLE001 - classified below; anything unexpected is re-raised
        raise hub_error(exc, p, data_dir, endpoint, revision) from None
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
    total = sum(expected_size(siblings[f]) or 0 for f in wanted)
    log(f"{p.spec.name}/{p.split}: {len(wanted)} file{'s' * (len(wanted) != 1)} ({human_size(total)}) from "
        f"{dl.repo_id} at {commit[:12]} into {data_dir}")
    return commit, siblings, wanted


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
