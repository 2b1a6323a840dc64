"""``prefbench download --weights NAME``: fetching a pinned model's files (:mod:`prefbench.pinned`)
into its folder and checking each one, from the hub (``huggingface_hub``, ``HF_ENDPOINT``) or from a
GitHub repository at a pinned commit (``PREFBENCH_GITHUB_RAW``), and the manifest that records them."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from prefbench.errors import DataError, MissingDataError, UsageError
from prefbench.pinned import CHUNK, GITHUB, GITHUB_RAW, MANIFEST, SCHEMA, PinnedFile, PinnedModel


def pinned_model(name: str) -> PinnedModel:
    from prefbench.models import aliases

    found = aliases().get(name)
    if isinstance(found, PinnedModel):
        return found
    import difflib

    names = sorted(n for n, a in aliases().items() if isinstance(a, PinnedModel))
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    raise UsageError(f"no pinned model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
                     + f" Pinned models: {', '.join(names)}")


def instructions(model: PinnedModel) -> str:
    lines = [f"put these files in {model.root} (or in any folder you pass as --model):"]
    for f in model.files:
        rev = f.revision or "main"
        extra = f" (sha256 {f.sha256})" if f.sha256 else ""
        opt = " (optional)" if f.optional else ""
        if f.on_github:
            owner_repo = f.repo[len(GITHUB):]
            lines.append(f"  {f.names[0]}: {GITHUB_RAW}/{owner_repo}/{rev}/{quote(f.names[0])}{extra}{opt}")
        else:
            lines.append(f"  {' or '.join(f.names)}: hf download {f.repo} {f.names[0]} --revision {rev} "
                         f"--local-dir {model.root}{opt}")
    return "\n".join(lines)


def download_weights(name: str, *, progress: bool = True, endpoint: str | None = None,
                     log: Callable[[str], None] | None = None) -> dict:
    """Fetch pinned model ``name`` into :func:`prefbench.pinned.models_dir`, check every file, write and return the manifest."""
    model = pinned_model(name)
    log = log or (lambda line: print(f"prefbench: {line}", file=sys.stderr, flush=True))
    try:
        import huggingface_hub
        import huggingface_hub.constants
        import huggingface_hub.utils
    except ImportError:
        raise MissingDataError("downloading needs huggingface_hub, which is not installed (pip install "
                               f"'prefbench[hub]'). Without it: {instructions(model)}") from None
    hub = huggingface_hub
    from prefbench.hub_io import _offline

    if _offline(hub):
        raise MissingDataError(f"cannot reach the hub (HF_HUB_OFFLINE is set): {instructions(model)}")
    endpoint = (endpoint or hub.constants.ENDPOINT).rstrip("/")
    folder = model.root
    folder.mkdir(parents=True, exist_ok=True)
    old = {f.get("path"): f for f in (model.manifest() or {}).get("files", []) if isinstance(f, dict)}
    infos: dict[str, object] = {}
    records = []
    for pf in model.files:
        if pf.on_github:
            records.append(github_file(pf, folder, old, log))
            continue
        rev = pf.revision or _recorded_revision(old, pf) or None
        key = f"{pf.repo}@{rev}"
        if key not in infos:
            try:
                infos[key] = hub.HfApi(endpoint=endpoint).repo_info(pf.repo, revision=rev, files_metadata=True)
            except Exception as exc:  # noqa: BLE001 - classified below
                raise _hub_error(exc, model, pf, endpoint) from None
        info = infos[key]
        siblings = {s.rfilename: s for s in (info.siblings or [])}
        path = next((n for n in pf.names if n in siblings), None)
        if path is None:
            if pf.optional:
                continue
            raise UsageError(f"{pf.repo} at {info.sha[:12]} has no {' or '.join(pf.names)}: prefbench's reading of the "
                             f"repository may be out of date. {instructions(model)}")
        records.append(_hub_file(hub, pf, path, info.sha, siblings[path], folder, old, endpoint, progress, log))
    manifest = {
        "prefbench_weights": SCHEMA, "name": model.name, "scorer": model.scorer, "params": model.params,
        "source": model.source, "endpoint": endpoint, "files": records,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "huggingface_hub_version": getattr(hub, "__version__", None),
    }
    tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)
    log(f"wrote {folder / MANIFEST}")
    return {**manifest, "folder": str(folder)}


def _recorded_revision(old: dict, pf: PinnedFile) -> str | None:
    for name in pf.names:
        rec = old.get(name)
        if rec and rec.get("repo") == pf.repo:
            return rec.get("revision")
    return None


def _hash(path: Path) -> tuple[int, str, str]:
    size = path.stat().st_size
    sha256, git = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha256.update(chunk)
            git.update(chunk)
    return size, sha256.hexdigest(), git.hexdigest()


def _known(old: dict, path: str, local: Path, repo: str, revision: str) -> tuple[int, str] | None:
    """The recorded (size, sha256) of a file fetched earlier at the same commit and not changed since."""
    rec = old.get(path)
    try:
        st = local.stat()
    except OSError:
        return None
    if rec and rec.get("repo") == repo and rec.get("revision") == revision and rec.get("size") == st.st_size \
            and rec.get("mtime_ns") == st.st_mtime_ns and rec.get("sha256"):
        return st.st_size, rec["sha256"]
    return None


def _check(pf: PinnedFile, local: Path, size: int, sha256: str, git_oid: str | None, record) -> str:
    """How the file was checked ('pinned sha256', 'hub sha256', 'git blob id', 'size'); a mismatch
    removes the file and raises."""
    problems = []
    expected_size = pf.size
    lfs = getattr(record, "lfs", None) if record is not None else None
    if expected_size is None and record is not None:
        expected_size = getattr(lfs, "size", None) if lfs is not None else getattr(record, "size", None)
    if expected_size is not None and size != expected_size:
        problems.append(f"has {size} bytes, expected {expected_size}")
    if pf.sha256 and sha256 != pf.sha256:
        problems.append(f"has sha256 {sha256}, pinned {pf.sha256}")
    hub_sha = getattr(lfs, "sha256", None) if lfs is not None else None
    if hub_sha and sha256 != hub_sha:
        problems.append(f"has sha256 {sha256}, the hub's record {hub_sha}")
    blob = getattr(record, "blob_id", None) if record is not None and lfs is None else None
    if blob and git_oid is not None and git_oid != blob:
        problems.append(f"has git blob id {git_oid}, the hub's record {blob}")
    if problems:
        local.unlink(missing_ok=True)
        raise DataError("; ".join(problems) + ": removed it; run the command again to fetch it afresh", local)
    if pf.sha256:
        return "pinned sha256"
    if hub_sha:
        return "hub sha256"
    if blob:
        return "git blob id"
    return "size" if expected_size is not None else "none"


def _hub_file(hub, pf: PinnedFile, path: str, commit: str, record, folder: Path, old: dict, endpoint: str,
              progress: bool, log) -> dict:
    local = folder / path
    known = _known(old, path, local, pf.repo, commit)
    if known is not None:
        size, sha256 = known
        fetched, git_oid = False, None
    else:
        log(f"{pf.repo} at {commit[:12]}: {path}")
        from prefbench.hub_io import _progress_bars

        with _progress_bars(hub, progress):
            try:
                hub.hf_hub_download(pf.repo, path, revision=commit, local_dir=str(folder), endpoint=endpoint)
            except Exception as exc:  # noqa: BLE001
                raise _hub_error(exc, None, pf, endpoint) from None
        size, sha256, git_oid = _hash(local)
        fetched = True
    checked = _check(pf, local, size, sha256, git_oid, record) if fetched else old[path]["checked"]
    st = local.stat()
    return {"path": path, "repo": pf.repo, "revision": commit, "requested_revision": pf.revision or "main",
            "size": size, "sha256": sha256, "checked": checked, "pinned_sha256": pf.sha256, "fetched": fetched,
            "mtime_ns": st.st_mtime_ns}


def github_file(pf: PinnedFile, folder: Path, old: dict, log) -> dict:
    """A file of a GitHub repository at its pinned commit, read over HTTPS and checked against its
    pinned sha256 (a ``github:`` file without a verified commit and sha256 is refused)."""
    if not (pf.revision and pf.sha256):
        raise UsageError(f"{pf.repo} {pf.names[0]}: no verified commit and sha256, so prefbench does not fetch it")
    path = pf.local_name
    local = folder / path
    known = _known(old, path, local, pf.repo, pf.revision)
    fetched = known is None
    if fetched:
        url = github_url(pf.repo, pf.revision, pf.names[0])
        log(f"{pf.repo} at {pf.revision[:12]}: {pf.names[0]}")
        fetch_url(url, local)
        size, sha256, _ = _hash(local)
        checked = _check(pf, local, size, sha256, None, None)
    else:
        size, sha256 = known
        checked = old[path]["checked"]
    return {"path": path, "repo": pf.repo, "revision": pf.revision, "requested_revision": pf.revision, "size": size,
            "sha256": sha256, "checked": checked, "pinned_sha256": pf.sha256, "fetched": fetched,
            "mtime_ns": local.stat().st_mtime_ns}


def github_url(repo: str, revision: str, path: str) -> str:
    base = os.environ.get("PREFBENCH_GITHUB_RAW") or GITHUB_RAW
    return f"{base.rstrip('/')}/{repo.removeprefix(GITHUB)}/{revision}/{quote(path)}"


def fetch_url(url: str, dest: Path, timeout: float = 60.0) -> None:
    """GET ``url`` into ``dest`` (through ``dest``'s ``.part`` file, renamed when whole)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    import urllib.request

    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:  # noqa: S310 - https or a mirror
            while chunk := resp.read(CHUNK):
                out.write(chunk)
    except OSError as exc:  # URLError, HTTPError, timeouts
        part.unlink(missing_ok=True)
        raise MissingDataError(f"cannot fetch {url} ({getattr(exc, 'reason', None) or exc}); put the file at {dest} "
                               "yourself and run the command again") from None
    os.replace(part, dest)


def _hub_error(exc: Exception, model: PinnedModel | None, pf: PinnedFile, endpoint: str) -> Exception:
    from huggingface_hub import utils as hub_utils

    from prefbench.errors import PrefbenchError
    from prefbench.hub_io import _unreachable

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    after = f" {instructions(model)}" if model is not None else ""
    if isinstance(exc, PrefbenchError):
        return exc
    if isinstance(exc, hub_utils.RevisionNotFoundError):
        return UsageError(f"the hub repository {pf.repo} has no revision {pf.revision!r} ({first})")
    if isinstance(exc, hub_utils.RepositoryNotFoundError):
        return MissingDataError(f"the hub at {endpoint} has no repository {pf.repo} that this machine may read "
                                f"({first}).{after}")
    if _unreachable(exc):
        return MissingDataError(f"cannot reach the hub at {endpoint} ({type(exc).__name__}: {first}).{after}")
    if isinstance(exc, hub_utils.HfHubHTTPError):
        return UsageError(f"the hub at {endpoint} refused the download of {pf.repo}: {first}")
    return exc
