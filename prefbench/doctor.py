"""``prefbench doctor``: what this machine has, so a user can see why a scorer is unavailable.

Checks are made without importing anything heavy (``importlib.util.find_spec`` and package
metadata); ``--import`` also imports torch to report CUDA, which takes seconds.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

#: Python module -> distribution name, for the packages the extras bring in
MODULES = {
    "torch": "torch", "torchvision": "torchvision", "transformers": "transformers", "accelerate": "accelerate",
    "peft": "peft", "trl": "trl", "datasets": "datasets", "openai": "openai", "tenacity": "tenacity",
    "open_clip": "open-clip-torch", "huggingface_hub": "huggingface_hub", "unsloth": "unsloth",
    "vllm": "vllm", "pytest": "pytest",
}


def _module(name: str) -> dict[str, Any]:
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    try:
        ver = version(MODULES.get(name, name))
    except PackageNotFoundError:
        ver = None
    return {"importable": found, "version": ver if found else None}


def _checkout() -> Path | None:
    """The source checkout prefbench runs from (an editable install), else None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def _venv(rel: str, probe: str, script: str) -> dict[str, Any]:
    bases = [Path.cwd()] + ([_checkout()] if _checkout() else [])
    for base in dict.fromkeys(bases):
        py = base / rel / "bin" / "python"
        if py.is_file():
            return {"present": True, "path": str(base / rel), "make_with": script}
    return {"present": False, "path": None, "make_with": script, "probe": probe}


#: the command that puts ImageReward's real test.json where the tests look for it (docs/datasets.md)
IR_COMMAND = "prefbench download imagereward --data-dir ../shared/data/imagereward"


def _imagereward_annotation() -> dict[str, Any]:
    """ImageReward's real test.json beside the checkout (``../shared/data/imagereward``), which the
    tests of the real annotation read; None outside a checkout."""
    root = _checkout()
    if root is None:
        return {"present": None, "path": None, "get_with": IR_COMMAND}
    path = root.parent / "shared" / "data" / "imagereward" / "test.json"
    return {"present": path.is_file(), "path": str(path), "get_with": IR_COMMAND}


def collect(import_torch: bool = False) -> dict[str, Any]:
    """Everything the report shows, as one JSON-ready dict."""
    from prefbench import __version__
    from prefbench.registry import EXTRA_MODULES

    modules = {name: _module(name) for name in MODULES}
    extras = {}
    for extra, needed in EXTRA_MODULES.items():
        missing = [m for m in needed if not modules.get(m, _module(m))["importable"]]
        extras[extra] = {"installed": not missing, "missing": missing}
    torch_info: dict[str, Any] = {"imported": False}
    if import_torch and modules["torch"]["importable"]:
        import torch

        torch_info = {"imported": True, "version": torch.__version__, "cuda_available": torch.cuda.is_available(),
                      "cuda_version": torch.version.cuda,
                      "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                    None)
    disk = shutil.disk_usage(Path.cwd())
    return {
        "prefbench": __version__,
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "platform": platform.platform(),
        "checkout": str(_checkout()) if _checkout() else None,
        "modules": modules,
        "extras": extras,
        "torch": torch_info,
        "envs": {
            "reference": _venv(".venvs/reference", "encoder parity tests", "scripts/setup_reference_envs.sh"),
            "vllm": _venv(".venvs/vllm", "real vLLM server tests", "scripts/setup_vllm_env.sh"),
        },
        "chromium": chromium,
        "imagereward_annotation": _imagereward_annotation(),
        "disk_free_gb": round(disk.free / 1e9, 1),
        "memory_available_gb": _memory_available_gb(),
        "cpus": os.cpu_count(),
    }


def _memory_available_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return round(int(line.split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    return None


def render(info: dict[str, Any]) -> str:
    """The human-readable report."""
    py = info["python"]
    lines = [f"prefbench {info['prefbench']} on Python {py['version']} ({py['executable']})",
             f"  platform: {info['platform']}; {info['cpus']} CPUs, {_gb(info['memory_available_gb'])} memory "
             f"available, {_gb(info['disk_free_gb'])} disk free here"]
    t = info["torch"]
    mod = info["modules"]["torch"]
    if t.get("imported"):
        gpu = (f"CUDA {t['cuda_version']}, {len(t['devices'])} GPU(s): {', '.join(t['devices'])}"
               if t["cuda_available"] else "no CUDA GPU (CPU only)")
        lines.append(f"  torch {t['version']}: {gpu}")
    elif mod["importable"]:
        lines.append(f"  torch {mod['version']} (not imported; `prefbench doctor --import` reports CUDA)")
    else:
        lines.append("  torch: not installed (pip install -e '.[vlm]')")
    from prefbench.registry import EXTRA_HINTS

    lines.append("\nInstall extras (pip install -e '.[EXTRA]'):")
    for extra, e in info["extras"].items():
        state = "installed" if e["installed"] else f"missing {', '.join(e['missing'])}"
        if not e["installed"] and extra in EXTRA_HINTS:
            state += f" ({EXTRA_HINTS[extra]})"
        lines.append(f"  {extra:<12} {state}")
    lines.append("\nPackages:")
    for name, m in info["modules"].items():
        lines.append(f"  {name:<16} {m['version'] or ('yes' if m['importable'] else '-')}")
    lines.append("\nOptional environments and tools (tests that need them skip without them):")
    for name, env in info["envs"].items():
        state = f"present ({env['path']})" if env["present"] else f"absent: make it with {env['make_with']}"
        lines.append(f"  {name + ' env':<16} {state}")
    lines.append(f"  {'chromium':<16} {info['chromium'] or 'absent: apt-get install chromium (the report browser test)'}")
    ir = info["imagereward_annotation"]
    if ir["present"] is not None:
        state = (f"present ({ir['path']})" if ir["present"] else
                 f"absent: from the repository root, {ir['get_with']} (the real-annotation tests)")
        lines.append(f"  {'IR test.json':<16} {state}")
    return "\n".join(lines)


def _gb(x: float | None) -> str:
    return "?" if x is None else f"{x:g} GB"
