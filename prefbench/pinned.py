"""Familiar model names (``ImageReward-v1.0``, ``HPSv2.1``, ``PickScore_v1``, ...) pinned to hub files.

Users know the encoder baselines by their own packages' names: ``ImageReward.load("ImageReward-v1.0")``,
``hpsv2.score(..., hps_version="v2.1")``, PickScore's README model ``yuvalkirstain/PickScore_v1``,
ImageReward's ``load_score("CLIP")`` and ``load_score("Aesthetic")``. Each name here is a
:class:`PinnedModel`: the scorer it is for, the scorer options it implies (``HPSv2`` is
``-S version=v2.0``), and the files it is made of, each in a repository (a hub repository, or a
GitHub repository read at one commit), with the hashes and commits that were verified and ``None``
where they were not.

``prefbench download --weights NAME`` (:mod:`prefbench.pinned_download`) fetches the files into one folder,
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

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from prefbench.errors import MissingDataError, UsageError

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
        from prefbench.paths import relative_inside

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

#: the module attributes the model-alias registry names (prefbench.models.MANIFEST)
IMAGEREWARD_V1_0 = PINNED["ImageReward-v1.0"]
HPSV2_1 = PINNED["HPSv2.1"]
HPSV2_0 = PINNED["HPSv2"]
PICKSCORE_V1 = PINNED["PickScore_v1"]
CLIP_L14 = PINNED["CLIP"]
AESTHETIC = PINNED["Aesthetic"]
