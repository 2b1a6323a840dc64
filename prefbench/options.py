"""Scorer and engine options: ``-S key=value`` parsing, the options a class accepts (its
keyword-only ``__init__`` parameters), their type checks, and :func:`build`, which makes a scorer
from its registered name and records what was passed and what resolved.

A scorer that runs on an engine (``uses_engine = True``) takes the engine's options next to its
own; :func:`split_params` tells them apart. The registries themselves are :mod:`prefbench.registry`.
"""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

from prefbench.errors import UsageError
from prefbench.registry import SCORERS, Entry, load_engine, lookup


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
    cls = SCORERS.get(name)
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
