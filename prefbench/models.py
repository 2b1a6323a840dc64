"""Model aliases: model ids that name local checkpoint folders (``prefbench-demo/rating``).

One registry mechanism (:class:`prefbench.registry.Registry`) like scorers, engines and datasets:
the built-in :data:`MANIFEST` maps an alias prefix to a ``"module:attr"`` string naming a
:class:`ModelAlias` (or a pinned name, :class:`prefbench.pinned.PinnedModel`), and a package adds
its own under the ``prefbench.models`` entry-point group.
An alias does three things, so that no other layer special-cases a set of bundled models:

- it resolves ``<prefix>/<name>`` to a folder (``--model``, ``load_scorer(model=)``);
- it may offer a default model for a scorer on some datasets (the demo world's zoo: ``prefbench
  run --scorer expected_rating`` on the demo split needs no ``--model``);
- it records a folder inside it portably, as ``<prefix>/<name>`` with the weights' hash as
  revision, so runs, config hashes and CI baselines match across machines.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from prefbench.errors import UsageError

ENTRY_POINT_GROUP = "prefbench.models"

#: built-in aliases: prefix -> the module attribute holding its alias (the demo world's
#: ``prefbench-demo`` is registered by this distribution's entry point, as a plugin's alias is)
MANIFEST: dict[str, str] = {
    # familiar names pinned to hub files, fetched by `prefbench download --weights NAME` (prefbench.pinned)
    "ImageReward-v1.0": "prefbench.pinned:IMAGEREWARD_V1_0",
    "HPSv2.1": "prefbench.pinned:HPSV2_1",
    "HPSv2": "prefbench.pinned:HPSV2_0",
    "PickScore_v1": "prefbench.pinned:PICKSCORE_V1",
    "CLIP": "prefbench.pinned:CLIP_L14",
    "Aesthetic": "prefbench.pinned:AESTHETIC",
}


@dataclass(frozen=True)
class ModelAlias:
    """``<prefix>/<name>`` -> ``root/<name>`` (a folder with a ``config.json``).

    ``defaults``: scorer name -> model name used when no model is given, on the datasets in
    ``default_datasets`` (``None`` in that tuple: in the Python API and ``prefbench rank`` /
    ``serve``, where there is no dataset)."""

    prefix: str
    root: Path
    description: str = ""
    defaults: dict[str, str] = field(default_factory=dict)
    default_datasets: tuple[str | None, ...] = ()
    #: scorer -> options that come with its default model on a named dataset (the demo suite's
    #: row: ``prefbench run --scorer X`` on the demo is then the suite's run, same config hash)
    default_options: dict[str, dict] = field(default_factory=dict)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "config.json").is_file())

    def resolve(self, model_id: str) -> Path:
        name = model_id[len(self.prefix) + 1:]
        path = self.root / name
        if not name or "/" in name or name.startswith(".") or not (path / "config.json").is_file():
            known = ", ".join(f"{self.prefix}/{n}" for n in self.names()) or "none"
            raise UsageError(f"no bundled checkpoint {model_id!r}; bundled: {known}")
        return path

    def default(self, scorer: str, dataset: str | None) -> str | None:
        name = self.defaults.get(scorer)
        if name is None or dataset not in self.default_datasets or not (self.root / name / "config.json").is_file():
            return None
        return f"{self.prefix}/{name}"

    def portable(self, path: str) -> str | None:
        """``<prefix>/<relative path>`` for a path inside ``root`` (resolved), else None."""
        from prefbench.paths import relative_inside

        rel = relative_inside(os.path.realpath(path), os.path.realpath(self.root))
        if rel is None or rel == ".":
            return None
        return f"{self.prefix}/{rel.replace(os.sep, '/')}"


@dataclass(frozen=True)
class ResolvedModel:
    """A model id an alias resolved: what the scorer loads (``path``) and what a run records."""

    id: str
    path: Path
    #: a pinned name (prefbench.pinned): the commit(s) it was fetched at, its scorer and the options it implies
    pinned_revision: str | None = None
    scorer: str | None = None
    params: dict = field(default_factory=dict)

    @property
    def revision(self) -> str | None:
        if self.pinned_revision:
            return self.pinned_revision
        weights = self.path / "model.safetensors"
        return hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.is_file() else None


_REGISTRY = None


def registry():
    """The model-alias registry (:class:`prefbench.registry.Registry`, keyed by prefix)."""
    global _REGISTRY
    if _REGISTRY is None:
        from prefbench.pinned import PinnedModel
        from prefbench.registry import Registry

        _REGISTRY = Registry("model alias", ENTRY_POINT_GROUP, MANIFEST, expect=(ModelAlias, PinnedModel))
    return _REGISTRY


def aliases() -> dict[str, ModelAlias]:
    """Every model alias by prefix, built-ins first (a plugin that is not a ModelAlias is skipped)."""
    return registry().all()


def resolve_model(model: str | None, scorer: str | None = None) -> ResolvedModel | None:
    """The alias's folder for ``<prefix>/<name>`` or a pinned familiar name (``HPSv2.1``); None for
    anything else (a path, a hub id). ``scorer``: a pinned name for another scorer is refused."""
    if not model or os.path.exists(model):
        return None
    if "/" not in model:
        from prefbench.pinned import PinnedModel

        pinned = aliases().get(model)
        if not isinstance(pinned, PinnedModel):
            return None
        if scorer is not None and scorer != pinned.scorer:
            raise UsageError(f"{model} is weights for the {pinned.scorer} scorer, not {scorer}: "
                             f"prefbench run --scorer {pinned.scorer} --model {model}")
        return ResolvedModel(model, pinned.resolve(model), pinned.revision(), pinned.scorer, dict(pinned.params))
    from prefbench.pinned import PinnedModel

    alias = aliases().get(model.split("/", 1)[0])
    return ResolvedModel(model, alias.resolve(model)) if alias and not isinstance(alias, PinnedModel) else None


def default_model(scorer: str, dataset: str | None) -> str | None:
    """The model id an alias offers for ``scorer`` on ``dataset`` (None: the user must give one)."""
    return default_choice(scorer, dataset)[0]


def default_choice(scorer: str, dataset: str | None) -> tuple[str | None, dict]:
    """The model id an alias offers for ``scorer`` on ``dataset`` and the options that come with
    it there (``(None, {})``: the user must give a model)."""
    for alias in aliases().values():
        found = alias.default(scorer, dataset)
        if found:
            return found, (dict(alias.default_options.get(scorer, {})) if dataset is not None else {})
    return None, {}


def portable_model_path(path: str) -> str | None:
    """``<prefix>/<rel>`` when ``path`` lies in an alias's folder, else None."""
    for alias in aliases().values():
        found = alias.portable(path)
        if found:
            return found
    return None


def expand_model_id(text: str) -> Path | None:
    """Inverse of :func:`portable_model_path` (a file inside a bundled folder too), else None."""
    if "/" not in text:
        return None
    alias = aliases().get(text.split("/", 1)[0])
    return alias.root / text.split("/", 1)[1] if alias else None
