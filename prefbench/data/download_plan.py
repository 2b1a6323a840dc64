"""What a dataset split's download fetches, and what a user without the hub is told.

:func:`plan` reads the dataset's download manifest for one split (the repository and the globs
of its files); :func:`instructions` says which files of which repository to put where, for a
user without the hub; :func:`import_hub` and :func:`hub_error` turn a missing
``huggingface_hub`` and the hub's answers into prefbench's errors (exit 2), each with those
instructions. The download itself is :mod:`prefbench.data.download`.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from prefbench.errors import DataError, MissingDataError, PrefbenchError, UsageError
from prefbench.hub_io import _unreachable

DEFAULT_ENDPOINT = "https://huggingface.co"


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
    """The repository's page on the hub."""
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


def import_hub(p: Plan, data_dir: Path):
    """``huggingface_hub`` (imported only here), or a :class:`MissingDataError` with the instructions."""
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
    """The hub's URL: huggingface_hub's when it is imported, else ``HF_ENDPOINT``, else huggingface.co."""
    hub = sys.modules.get("huggingface_hub.constants")
    return getattr(hub, "ENDPOINT", None) or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT


def hub_error(exc: Exception, p: Plan, data_dir: Path, endpoint: str, revision: str | None,
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
