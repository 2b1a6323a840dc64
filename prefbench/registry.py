"""Scorer registry: a lazy manifest of built-ins plus the ``prefbench.scorers`` entry points.

Listing imports nothing heavy: the manifest holds ``"module:Class"`` strings and the Python
modules each scorer needs, checked with ``importlib.util.find_spec``. Third-party scorers are
classes declared under the entry-point group ``prefbench.scorers``; they are loaded only when
a lookup misses the built-ins or a listing asks. Built-in names win on a clash; a plugin that
fails to load is a warning that names it, never a crash.
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
}


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

    def load(self) -> type:
        missing = self.missing_modules()
        if missing:
            raise MissingExtraError(self.name, self.extra or self.name, ", ".join(missing))
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


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


def _plugin_entries() -> dict[str, ScorerEntry]:
    from importlib.metadata import entry_points

    out: dict[str, ScorerEntry] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILTIN:
            warnings.warn(
                f"plugin scorer {ep.name!r} ({ep.value}) clashes with a built-in scorer; the built-in wins",
                stacklevel=3,
            )
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # any failure in third-party code must not break prefbench
            warnings.warn(f"could not load plugin scorer {ep.name!r} ({ep.value}): {exc!r}", stacklevel=3)
            continue
        doc = (inspect.getdoc(cls) or "").splitlines()
        out[ep.name] = ScorerEntry(ep.name, ep.value, doc[0] if doc else "", getattr(cls, "extra", None),
                                   source=f"plugin: {ep.dist.name if ep.dist else ep.module}", requires=())
    return out


def entries(include_plugins: bool = True) -> dict[str, ScorerEntry]:
    """All scorers, built-ins first."""
    out = dict(BUILTIN)
    if include_plugins:
        out.update(_plugin_entries())
    return out


#: scorers that can run on another backend than their default (``prefbench run --backend``)
BACKENDS: dict[str, dict[str, str]] = {
    "openai": {
        "expected_rating": "prefbench.scorers.vlm.openai_backend:OpenAIExpectedRating",
        "anchor_pairwise": "prefbench.scorers.vlm.openai_backend:OpenAIAnchorPairwise",
        "naive_sampling": "prefbench.scorers.vlm.openai_backend:OpenAINaiveSampling",
        "zero_shot": "prefbench.scorers.vlm.openai_backend:OpenAIZeroShot",
    },
}


def lookup(name: str, backend: str | None = None) -> ScorerEntry:
    if backend:
        targets = BACKENDS.get(backend)
        if targets is None:
            raise UsageError(f"unknown backend {backend!r}; backends: {', '.join(sorted(BACKENDS))}")
        if name not in targets:
            raise UsageError(f"scorer {name!r} has no {backend} backend; scorers with one: {', '.join(sorted(targets))}")
        base = BUILTIN[name]
        return ScorerEntry(name, targets[name], f"{base.description} (via an {backend} server)", extra=backend,
                           source=f"builtin ({backend} backend)")
    if name in BUILTIN:
        return BUILTIN[name]
    plugins = _plugin_entries()
    if name in plugins:
        return plugins[name]
    known = list(BUILTIN) + list(plugins)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownScorerError(f"unknown scorer {name!r}.{hint} Known scorers: {', '.join(sorted(known))}")


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


def options(cls: type) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(cls.__init__)
    return {n: p for n, p in sig.parameters.items() if n != "self" and p.kind is p.KEYWORD_ONLY}


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


def build(name: str, params: dict[str, Any] | None = None, backend: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Instantiate scorer ``name`` with ``params``; returns (scorer, spec).

    The spec records what the user passed and every resolved value, so a run can be replayed
    from run.json alone.
    """
    params = dict(params or {})
    entry = lookup(name, backend)
    cls = entry.load()
    accepted = options(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UsageError(
            f"scorer {name!r} has no option(s) {', '.join(unknown)}; "
            f"its options: {', '.join(sorted(accepted)) or '(none)'}"
        )
    for key, value in params.items():
        problem = type_problem(accepted[key], value)
        if problem:
            raise UsageError(f"scorer {name!r}: option {key} {problem}")
    try:
        scorer = cls(**params)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"scorer {name!r}: {exc}") from None
    spec = {"name": name, "target": entry.target, "source": entry.source, "passed": params,
            "resolved": scorer.params()}
    if backend:
        spec["backend"] = backend
    return scorer, spec
