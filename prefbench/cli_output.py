"""How the commands print: numbers, strict JSON, a convention's extra figures. Shared by
:mod:`prefbench.commands` and the command modules beside it (e.g. ``prefbench.judges.command``);
imports nothing of prefbench, so that any command module may use it without a cycle."""

from __future__ import annotations

import json
import math


def _fmt(x, digits=4):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, allow_nan=False, default=str))


def _clean(obj):
    """NaN -> None, so --json output is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def _extra_lines(m: dict) -> list[str]:
    """The figures a convention's summary added (``summary_keys``), rules (``*_rule``) on their own lines."""
    keys = m.get("summary_keys") or []
    shown = [f"{k} {_fmt(m[k]) if isinstance(m[k], float) else m[k]}" for k in keys
             if k in m and not k.endswith("_rule")]
    lines = ["  " + "  ".join(shown)] if shown else []
    lines += [f"  rule: {m[k]}" for k in keys if k in m and k.endswith("_rule")]
    return lines
