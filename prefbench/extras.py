"""Install extras: which Python modules each ``prefbench[extra]`` provides, read from the package's
own metadata, so that pyproject.toml is the one place an extra is declared.

:func:`extra_modules` reads the ``Requires-Dist`` lines of the installed ``prefbench``
distribution (``torch>=2.4; extra == "vlm"``, ``prefbench[vlm]; extra == "train"``), follows
``prefbench[...]`` into the extras it names, and turns each distribution name into the module it
installs (``open-clip-torch`` -> ``open_clip``). Nothing is imported: callers check the modules
with ``importlib.util.find_spec``, so ``prefbench list`` stays light. Without metadata (a source
tree on ``sys.path`` that was never installed) :data:`FALLBACK` answers.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache

from prefbench.errors import MissingExtraError

DISTRIBUTION = "prefbench"

#: distributions whose import name is not their normalised name
IMPORT_NAMES: dict[str, str] = {
    "open_clip_torch": "open_clip",
    "pillow": "PIL",
    "pytest_xdist": "xdist",
    "pyyaml": "yaml",
    "scikit_learn": "sklearn",
}

#: extras that live outside this distribution's metadata: vLLM is installed into its own
#: virtualenv by scripts/setup_vllm_env.sh, not through an extra
EXTERNAL: dict[str, tuple[str, ...]] = {"vllm": ("vllm",)}

#: what an extra provides when the distribution's metadata cannot be read
FALLBACK: dict[str, tuple[str, ...]] = {
    "vlm": ("torch", "torchvision", "transformers", "accelerate", "peft", "num2words"),
    "train": ("torch", "torchvision", "transformers", "accelerate", "peft", "num2words", "trl", "datasets"),
    "openai": ("openai", "tenacity"),
    "clip": ("torch", "transformers"),
    "pickscore": ("torch", "transformers"),
    "aesthetic": ("torch", "transformers"),
    "hpsv2": ("torch", "torchvision", "open_clip"),
    "imagereward": ("torch", "torchvision", "transformers"),
    "hub": ("huggingface_hub",),
    "serve": ("fastapi", "uvicorn", "httpx", "tenacity", "prometheus_client"),
    "ray": ("ray",),
    "pandas": ("pandas",),
}

#: how to get an extra where ``pip install 'prefbench[extra]'`` is not the answer
HINTS: dict[str, str] = {
    "vllm": "vLLM lives in its own virtualenv: run `scripts/setup_vllm_env.sh DIR` and use `DIR/bin/prefbench`",
}

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def import_name(distribution: str) -> str:
    """The top-level module a distribution installs (``open-clip-torch`` -> ``open_clip``)."""
    normal = re.sub(r"[-_.]+", "_", distribution).lower()
    return IMPORT_NAMES.get(normal, normal)


def parse_requires(lines: list[str]) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """``Requires-Dist`` lines -> ``{extra: [(distribution, its extras), ...]}`` ("" = the core
    dependencies). A line with a marker other than ``extra == ...`` keeps only its extra."""
    out: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for line in lines:
        spec, _, marker = line.partition(";")
        m = _REQUIREMENT.match(spec)
        if not m:
            continue
        extra = _EXTRA_MARKER.search(marker)
        wanted = tuple(e.strip() for e in (m.group(2) or "").split(",") if e.strip())
        out.setdefault(extra.group(1) if extra else "", []).append((m.group(1), wanted))
    return out


def modules_by_extra(lines: list[str], distribution: str = DISTRIBUTION) -> dict[str, tuple[str, ...]]:
    """Each extra's modules from ``Requires-Dist`` lines, ``distribution[x, y]`` expanded."""
    table = parse_requires(lines)
    self_name = import_name(distribution)

    def expand(extra: str, seen: frozenset[str]) -> list[str]:
        found: list[str] = []
        for dist, wanted in table.get(extra, ()):
            if import_name(dist) == self_name:
                for sub in wanted:
                    if sub not in seen:
                        found += expand(sub, seen | {sub})
            else:
                found.append(import_name(dist))
        return list(dict.fromkeys(found))

    return {extra: tuple(expand(extra, frozenset({extra}))) for extra in table if extra}


@cache
def all_extras() -> dict[str, tuple[str, ...]]:
    """Every extra's modules: the installed distribution's metadata (else :data:`FALLBACK`),
    plus :data:`EXTERNAL`."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        lines = distribution(DISTRIBUTION).requires
    except PackageNotFoundError:
        lines = None
    table = modules_by_extra(lines) if lines else dict(FALLBACK)
    return {**table, **{k: v for k, v in EXTERNAL.items() if k not in table}}


def extra_modules(extra: str) -> tuple[str, ...]:
    """The modules ``prefbench[extra]`` provides (empty for an unknown extra)."""
    return all_extras().get(extra, ())


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that are not installed (none imported)."""
    return [m for m in extra_modules(extra) if importlib.util.find_spec(m) is None]


def require_extra(extra: str, name: str, kind: str = "command") -> None:
    """A :class:`MissingExtraError` naming ``pip install 'prefbench[extra]'`` when a module of
    ``extra`` is not installed: for a command to call before any work (reading data, loading a
    model), so that the missing package is the first thing the user hears of."""
    gone = missing(extra)
    if gone:
        raise MissingExtraError(name, extra, ", ".join(gone), kind=kind, hint=HINTS.get(extra))
