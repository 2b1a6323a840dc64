"""Options declared once, on the config objects: a field's default, help text and command-line
flag live in its metadata, and the CLI builds its arguments from them.

>>> from dataclasses import dataclass
>>> @dataclass
... class Example:
...     workers: int = option(2, help="actors, each with the model", type=int)
>>> import argparse
>>> p = argparse.ArgumentParser()
>>> add_options(p, Example, ["workers"])
>>> from_args(Example, p.parse_args(["--workers", "3"]), ["workers"])
{'workers': 3}

A config's default is the one default: the flag's default is the field's, and the help text says
it (``(default 2)``) unless the text already names it. ``flag=None`` leaves a field off the
command line (the command sets it from something else, e.g. ``--rating-scale`` for two fields).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Iterable
from typing import Any

_NO_FLAG = object()


#: the one help text of ``--allow-outside-data-dir`` (run, evaluate's data, train)
OUTSIDE_HELP = ("read image paths that resolve outside the data dir (absolute paths, '..', symlinks); off by "
                "default: such an image is not read and gets status error. Recorded in run.json")


# -- argparse types shared by every command (a clear message instead of a traceback)

def positive_int(text: str) -> int:
    """An integer >= 1 (a batch size, a count of resamples or rollouts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def port(text: str) -> int:
    """A TCP port, 0..65535 (0: a free one); 70000 is refused, not wrapped to 4464."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535 (0: a free port), got {value}")
    return value


def option(default: Any = dataclasses.MISSING, *, help: str, flag: Any = _NO_FLAG, type: Any = None,
           choices: Iterable[Any] | None = None, metavar: str | None = None, aliases: tuple[str, ...] = (),
           repeat: bool = False, show_default: bool = True, default_factory: Any = dataclasses.MISSING,
           required: bool = False, dest: str | None = None, convert: Any = None) -> Any:
    """A dataclass field with its command-line form: ``flag`` (default ``--field-name``; None: not
    on the command line), ``type`` (an argparse type), ``choices``, ``metavar``, ``aliases``
    (other flags for the same option), ``repeat`` (the flag may be given several times: a list),
    ``required`` (a required flag on the command line, whatever the field's default), ``dest`` (the
    parsed attribute's name when it is not the field's), ``convert`` (turns the parsed value into
    the field's, e.g. ``-S key=value`` strings into a dict)."""
    meta = {"help": help, "flag": flag, "type": type, "choices": tuple(choices) if choices is not None else None,
            "metavar": metavar, "aliases": tuple(aliases), "repeat": repeat, "show_default": show_default,
            "required": required, "dest": dest, "convert": convert}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def same_as(cls, name: str, **changes: Any) -> Any:
    """A field declared like ``cls``'s field ``name`` (same default, help and flag): how two
    configs share one option without restating it (e.g. the executor options of ``run`` and
    ``bench-generators``). ``changes``: metadata that differs (e.g. ``dest``), or another
    ``default`` / ``default_factory``."""
    f = _field(cls, name)
    default = changes.pop("default", f.default)
    factory = changes.pop("default_factory", f.default_factory)
    meta = {**f.metadata, **changes}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _field(cls, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def flag_of(f: dataclasses.Field) -> str | None:
    flag = f.metadata.get("flag", _NO_FLAG)
    return "--" + f.name.replace("_", "-") if flag is _NO_FLAG else flag


def dest_of(f: dataclasses.Field) -> str:
    return f.metadata.get("dest") or f.name


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _shown(value: Any) -> str:
    return str(value)


def add_options(parser, cls, names: Iterable[str], **help_overrides: str) -> None:
    """Add the command-line flags of ``cls``'s fields ``names`` (in that order) to ``parser``; a
    field's ``dest`` is its name, so :func:`from_args` reads them back. ``help_overrides``: a
    command whose use of a field differs says so in its own words (e.g. ``serve``'s ``--model``)."""
    for name in names:
        f = _field(cls, name)
        meta = f.metadata
        if "help" not in meta:
            raise KeyError(f"{cls.__name__}.{name} has no command-line help (declare it with option())")
        flag = flag_of(f)
        if flag is None:
            continue
        default = default_of(f)
        text = help_overrides.get(name, meta["help"])
        empty = default is None or default is False or (isinstance(default, (list, tuple, dict)) and not default)
        shown = not empty and meta["show_default"] and "default" not in text
        if shown:
            text += f" (default {_shown(default)})"
        kw: dict[str, Any] = {"dest": dest_of(f), "help": text.replace("%", "%%")}
        if meta["repeat"]:
            kw.update(action="append", default=[])
        elif isinstance(default, bool) and not meta["type"]:
            kw.update(action="store_false" if default else "store_true", default=default)
        else:
            kw["default"] = default
            if meta["type"] is not None:
                kw["type"] = meta["type"]
        if meta["choices"] is not None:
            kw["choices"] = list(meta["choices"])
        if meta["metavar"]:
            kw["metavar"] = meta["metavar"]
        elif kw.get("action") is None and meta["choices"] is None:
            kw["metavar"] = flag.lstrip("-").upper().replace("-", "_")
        if meta["required"]:
            kw["required"] = True
            kw.pop("default", None)
        parser.add_argument(flag, *meta["aliases"], **kw)


def from_args(cls, args, names: Iterable[str]) -> dict[str, Any]:
    """``{field: value}`` for the fields ``names`` of ``cls`` read back from parsed ``args``
    (fields without a flag are left out: the command sets them)."""
    out = {}
    for name in names:
        f = _field(cls, name)
        if flag_of(f) is not None:
            value = getattr(args, dest_of(f))
            value = list(value) if f.metadata.get("repeat") else value
            convert = f.metadata.get("convert")
            out[name] = convert(value) if convert is not None else value
    return out


def cli_fields(cls) -> list[str]:
    """The fields of ``cls`` that have a flag, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if "help" in f.metadata and flag_of(f) is not None]
