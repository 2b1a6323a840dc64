"""Familiar model names (``ImageReward-v1.0``, ``HPSv2.1``, ``PickScore_v1``, ...) pinned to hub files.

Users know the encoder baselines by their own packages' names: ``ImageReward.load("ImageReward-v1.0")``,
``hpsv2.score(..., hps_version="v2.1")``, PickScore's README model ``yuvalkirstain/PickScore_v1``,
ImageReward's ``load_score("CLIP")`` and ``load_score("Aesthetic")``. Each name here is a
:class:`PinnedModel`: the scorer it is for, the scorer options it implies (``HPSv2`` is
``-S version=v2.0``), and the files it is made of, each in a repository (a hub repository, or a
GitHub repository read at one commit), with the hashes and commits that were verified and ``None``
where they were not.

``prefbench download --weights NAME`` fetches the files into one folder,
``$PREFBENCH_CACHE/models/NAME/`` (default ``~/.cache/prefbench/models/NAME/``), laid out so that
the scorer's own local-folder rules find every file, and checks each file: against its pinned sha256
and size where one is known, else against the hub's own record (the sha256 of a file stored with
LFS, the git blob id of any other file, and its size). It writes ``prefbench_weights.json`` there:
the repository, the commit it resolved to, the size and sha256 of every file and how it was checked.
``--model NAME`` then resolves to that folder (a run records ``NAME`` and the commit, never this
machine's path); before the download it is an error that names the command. prefbench never
fetches weights on its own for a familiar name.

Facts and their sources are in each entry's ``source``; the names that were not verified from here
(hub commits, the sha256 of hub files) are ``None`` and the docs say so (docs/scorers.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from prefbench.errors import DataError, MissingDataError, UsageError

MANIFEST = "prefbench_weights.json"
SCHEMA = 1
GITHUB = "github:"
#: where ``github:`` files are read from (``PREFBENCH_GITHUB_RAW`` points at a mirror, or at a local test server)
GITHUB_RAW = "https://raw.githubusercontent.com"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PinnedFile:
    """One file of a pinned model: the first of ``names`` the repository has.

    ``repo``: a hub repository ``owner/name`` or ``github:owner/name``; ``revision``: the commit, or
    None where no commit was verified (the hub's ``main`` is resolved at download time and recorded);
    ``sha256`` / ``size``: the verified content, or None; ``optional``: the model loads without it."""

    repo: str
    names: tuple[str, ...]
    revision: str | None = None
    sha256: str | None = None
    size: int | None = None
    optional: bool = False
    dest: str | None = None  # where it goes in the folder (default: its path in the repository)

    @property
    def local_name(self) -> str:
        return self.dest or self.names[0]

    @property
    def on_github(self) -> bool:
        return self.repo.startswith(GITHUB)


@dataclass(frozen=True)
class PinnedModel:
    """A familiar name for a scorer's weights; duck-types :class:`prefbench.models.ModelAlias`."""

    name: str
    scorer: str
    description: str
    files: tuple[PinnedFile, ...]
    params: dict = field(default_factory=dict)
    source: str = ""
    defaults: dict = field(default_factory=dict)  # offers no default model (ModelAlias's interface)

    @property
    def prefix(self) -> str:
        return self.name

    @property
    def root(self) -> Path:
        return models_dir() / self.name

    def manifest(self) -> dict | None:
        try:
            data = json.loads((self.root / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("files"), list) else None

    def downloaded(self) -> bool:
        """The manifest is there and every file it lists is there at its recorded size."""
        m = self.manifest()
        if m is None or m.get("name") != self.name:
            return False
        for f in m["files"]:
            try:
                if (self.root / f["path"]).stat().st_size != f["size"]:
                    return False
            except (OSError, KeyError, TypeError):
                return False
        return True

    def names(self) -> list[str]:
        return [self.name] if self.downloaded() else []

    def resolve(self, model_id: str) -> Path:
        if model_id != self.name:
            raise UsageError(f"{model_id!r} is not a pinned model name; did you mean {self.name!r}?")
        if not self.downloaded():
            raise MissingDataError(f"{self.name} is not downloaded: `prefbench download --weights {self.name}` fetches "
                                   f"{self.what()} into {self.root}; or pass a folder holding those files as --model")
        return self.root

    def revision(self) -> str | None:
        """The commit(s) the folder was fetched at, ``repo@commit`` joined by commas (runs record it)."""
        m = self.manifest() or {}
        seen = []
        for f in m.get("files", []):
            entry = f"{f.get('repo')}@{str(f.get('revision'))[:12]}"
            if entry not in seen:
                seen.append(entry)
        return ",".join(seen) or None

    def what(self) -> str:
        by_repo: dict[str, list[str]] = {}
        for f in self.files:
            by_repo.setdefault(f.repo, []).append(" or ".join(f.names) + (" (optional)" if f.optional else ""))
        return "; ".join(f"{repo}: {', '.join(names)}" for repo, names in by_repo.items())

    def default(self, scorer: str, dataset: str | None) -> str | None:
        return None

    def portable(self, path: str) -> str | None:
        from prefbench.provenance import relative_inside

        rel = relative_inside(os.path.realpath(path), os.path.realpath(self.root))
        if rel is None:
            return None
        return self.name if rel == "." else f"{self.name}/{rel.replace(os.sep, '/')}"


def models_dir() -> Path:
    """``$PREFBENCH_CACHE/models`` (default ``~/.cache/prefbench/models``)."""
    return Path(os.environ.get("PREFBENCH_CACHE", Path.home() / ".cache" / "prefbench")).expanduser() / "models"


# -- the familiar names (facts carry their source; None = not verified from here)

_CLIP_L14 = "openai/clip-vit-large-patch14"
_CLIP_FILES = (
    PinnedFile(_CLIP_L14, ("config.json",)),
    PinnedFile(_CLIP_L14, ("model.safetensors", "pytorch_model.bin")),
    PinnedFile(_CLIP_L14, ("preprocessor_config.json",)),
    PinnedFile(_CLIP_L14, ("tokenizer_config.json",)),
    PinnedFile(_CLIP_L14, ("vocab.json",)),
    PinnedFile(_CLIP_L14, ("merges.txt",)),
    PinnedFile(_CLIP_L14, ("tokenizer.json",), optional=True),
    PinnedFile(_CLIP_L14, ("special_tokens_map.json",), optional=True),
)
_LAION_H14 = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
_AESTHETIC = "github:christophschuhmann/improved-aesthetic-predictor"

PINNED: dict[str, PinnedModel] = {m.name: m for m in (
    PinnedModel(
        "ImageReward-v1.0", "imagereward", "ImageReward v1.0 (the image-reward package's name)",
        (PinnedFile("THUDM/ImageReward", ("ImageReward.pt",)),
         PinnedFile("THUDM/ImageReward", ("med_config.json",)),
         PinnedFile("google-bert/bert-base-uncased", ("vocab.txt",)),
         PinnedFile("google-bert/bert-base-uncased", ("tokenizer_config.json",), optional=True)),
        source="THUDM/ImageReward @ c1392c6 ImageReward/utils.py: _MODELS['ImageReward-v1.0'] and load() fetch "
               "ImageReward.pt and med_config.json from the hub repository THUDM/ImageReward; its "
               "ImageReward/models/BLIP/blip.py loads the tokenizer 'bert-base-uncased' (the hub's legacy name of "
               "google-bert/bert-base-uncased)"),
    PinnedModel(
        "HPSv2.1", "hpsv2", "HPS v2.1 (the hpsv2 package's hps_version='v2.1')",
        (PinnedFile("xswu/HPSv2", ("HPS_v2.1_compressed.pt",)),), params={"version": "v2.1"},
        source="tgxs002/HPSv2 @ 866735e hpsv2/utils.py hps_version_map; img_score.py: "
               "hf_hub_download('xswu/HPSv2', ...)"),
    PinnedModel(
        "HPSv2", "hpsv2", "HPS v2.0 (the hpsv2 package's hps_version='v2.0')",
        (PinnedFile("xswu/HPSv2", ("HPS_v2_compressed.pt",)),), params={"version": "v2.0"},
        source="tgxs002/HPSv2 @ 866735e hpsv2/utils.py hps_version_map; img_score.py: "
               "hf_hub_download('xswu/HPSv2', ...)"),
    PinnedModel(
        "PickScore_v1", "pickscore", "PickScore v1 with the LAION ViT-H/14 processor its README pairs it with",
        (PinnedFile("yuvalkirstain/PickScore_v1", ("config.json",)),
         PinnedFile("yuvalkirstain/PickScore_v1", ("model.safetensors", "pytorch_model.bin")),
         PinnedFile(_LAION_H14, ("preprocessor_config.json",)),
         PinnedFile(_LAION_H14, ("tokenizer_config.json",)),
         PinnedFile(_LAION_H14, ("vocab.json",)),
         PinnedFile(_LAION_H14, ("merges.txt",)),
         PinnedFile(_LAION_H14, ("tokenizer.json",), optional=True),
         PinnedFile(_LAION_H14, ("special_tokens_map.json",), optional=True)),
        source="yuvalkirstain/PickScore @ f79607f README.md: model yuvalkirstain/PickScore_v1, processor "
               "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"),
    PinnedModel(
        "CLIP", "clip", "CLIP ViT-L/14 (image-reward's load_score('CLIP'); here its transformers port)",
        _CLIP_FILES,
        source="THUDM/ImageReward @ c1392c6 ImageReward/utils.py _SCORES['CLIP'] is OpenAI's ViT-L/14; its "
               "transformers port is openai/clip-vit-large-patch14"),
    PinnedModel(
        "Aesthetic", "aesthetic", "LAION's improved aesthetic predictor on CLIP ViT-L/14 (image-reward's "
        "load_score('Aesthetic'))",
        (*_CLIP_FILES,
         PinnedFile(_AESTHETIC, ("sac+logos+ava1-l14-linearMSE.pth",), revision="6934dd81792f086e613a121dbce43082cb8be85e",
                    sha256="21dd590f3ccdc646f0d53120778b296013b096a035a2718c9cb0d511bff0f1e0", size=3714759)),
        source="THUDM/ImageReward @ c1392c6 ImageReward/utils.py _SCORES['Aesthetic']: the head "
               "sac+logos+ava1-l14-linearMSE.pth of christophschuhmann/improved-aesthetic-predictor; its commit, "
               "size and sha256 read from that repository's git blob at 6934dd8"),
)}

#: the module attributes the model-alias registry names (prefbench.models.BUILTIN_ALIASES)
IMAGEREWARD_V1_0 = PINNED["ImageReward-v1.0"]
HPSV2_1 = PINNED["HPSv2.1"]
HPSV2_0 = PINNED["HPSv2"]
PICKSCORE_V1 = PINNED["PickScore_v1"]
CLIP_L14 = PINNED["CLIP"]
AESTHETIC = PINNED["Aesthetic"]


# -- fetching

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
    """Fetch pinned model ``name`` into :func:`models_dir`, check every file, write and return the manifest."""
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
    from prefbench.data.download import _offline

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
        from prefbench.data.download import _progress_bars

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

    from prefbench.data.download import _unreachable
    from prefbench.errors import PrefbenchError

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
