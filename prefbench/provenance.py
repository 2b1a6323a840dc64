"""Provenance that travels: git commit, package versions and machine-independent paths.

A run's identity (config hash, cache hit, run folder name) and everything it records must not
depend on where the checkout, the virtualenv or the user's cache lives, so that a committed
run is answered from its record on any machine. :func:`portable_path` is the one rule for
turning a path into what is recorded; runs and training both use it.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefbench.paths import relative_inside  # noqa: F401  (re-exported)

#: recorded in place of sys.argv[0] (a console script, ``-m``'s __main__.py, a venv path)
PROGRAM = "prefbench"


def portable_path(value: str | os.PathLike) -> str:
    """The form of a path that is recorded: the same on every machine for the same thing.

    - a checkpoint of a model alias (or a file in it) -> ``<prefix>/<name>[/file]``, e.g.
      ``prefbench-demo/rating`` (:mod:`prefbench.models`);
    - a path inside the current directory -> relative to it (``results/...``, ``data/...``);
    - a path inside the user's home -> ``~/...``;
    - anything else is kept as it is (an absolute path the user chose, or a hub id).

    Only absolute paths are rewritten; a relative path is already what the user typed.
    """
    text = os.fspath(value)
    if not os.path.isabs(text):
        return text
    from prefbench.models import portable_model_path

    aliased = portable_model_path(text)
    if aliased is not None:
        return aliased
    real = os.path.realpath(text)
    for base, prefix in ((os.getcwd(), ""), (str(Path.home()), "~/")):
        # the path as given, then resolved (a checkout reached through a symlink)
        rel = relative_inside(os.path.normpath(text), os.path.abspath(base)) or relative_inside(real, os.path.realpath(base))
        if rel is not None:
            return (prefix + rel) if rel != "." else (prefix.rstrip("/") or ".")
    return text


def portable_values(obj: Any) -> Any:
    """``obj`` with every absolute-path string (in dicts and lists) made :func:`portable_path`."""
    if isinstance(obj, dict):
        return {k: portable_values(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [portable_values(v) for v in obj]
    if isinstance(obj, (str, Path)) and os.path.isabs(os.fspath(obj)):
        return portable_path(obj)
    return obj


#: the userinfo of a URL (``scheme://user:secret@host``): credentials, never recorded or printed
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s\"'?#]*@")  # up to the last @: a password may hold one
#: secrets in a query string (``?api_key=...``, ``&token=...``)
_QUERY_SECRET = re.compile(r"([?&](?:[A-Za-z0-9_.-]*(?:key|token|secret|password|passwd|pwd|signature|sig|auth)"
                           r"[A-Za-z0-9_.-]*)=)[^&\s\"'#]+", re.IGNORECASE)


def redact_url(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``: the userinfo (a
    password holding ``@`` included) and query parameters named like a key, token or secret.

    >>> redact_url("http://user:key@gpu1:8000/v1 and https://h/v1")
    'http://***@gpu1:8000/v1 and https://h/v1'
    >>> redact_url("http://u:p@ss@h/v1?api_key=abc&x=1")
    'http://***@h/v1?api_key=***&x=1'
    """
    return _QUERY_SECRET.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


def expand_path(text: str) -> Path:
    """Inverse of :func:`portable_path` for reading a record back (``~`` and bundled ids)."""
    from prefbench.models import expand_model_id

    aliased = expand_model_id(text)
    if aliased is not None:
        return aliased
    return Path(os.path.expanduser(text))


def portable_command(argv: list[str] | None = None) -> list[str]:
    """The command line as recorded: ``prefbench`` and its arguments, paths made portable."""
    argv = list(sys.argv if argv is None else argv)
    return [PROGRAM, *(portable_path(a) if os.path.isabs(a) else a for a in argv[1:])]


def git_commit() -> dict[str, Any]:
    """Commit of the prefbench source tree (None outside a git checkout).

    ``git status`` runs with optional locks off, so it never takes ``.git/index.lock`` in the
    user's checkout while a run or a commit is under way there.
    """
    here = Path(__file__).resolve().parent
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True, env=env).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5, env=env).stdout.strip())
        return {"commit": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


#: libraries recorded when they are imported (runs) or always (training records pass ``names``)
TRACKED = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth", "openai", "open_clip", "vllm")


def package_versions(names: tuple[str, ...] | None = None) -> dict[str, str | None]:
    """Versions of prefbench, Python and the libraries in play: ``names``, or else the tracked
    heavy ones that are imported. Serves run.json and prefbench_train.json."""
    from importlib.metadata import PackageNotFoundError, version

    base = ["prefbench", "numpy", "scipy", "pillow"]
    heavy = list(names) if names is not None else [m for m in TRACKED if m in sys.modules]
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in base + [n for n in heavy if n not in base]:
        try:
            out[name] = version(name.replace("_", "-") if name != "open_clip" else "open-clip-torch")
        except PackageNotFoundError:
            out[name] = None
    return out


def accelerator_info() -> dict | None:
    """The GPUs a run used, for its record: name, count, compute capability, CUDA (as torch was
    built for it) and the driver (from nvidia-smi, when on PATH). None without an imported torch
    that sees a CUDA device: nothing is imported or probed for a run that used none."""
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return None
        n = torch.cuda.device_count()
        info: dict = {"gpu": torch.cuda.get_device_name(0), "count": n,
                      "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
                      "cuda": torch.version.cuda, "torch": torch.__version__}
    except Exception:  # noqa: BLE001 - provenance must never fail a run
        return None
    import shutil
    import subprocess

    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def model_fingerprint(path: str | None) -> str | None:
    """The model-identity helper for run.json and prefbench_train.json: sha256 of a local
    checkpoint's small config, tokenizer and chat template files plus the names and sizes of its
    weight files (hashing gigabytes of weights per run would be too slow); None for a hub id or a
    server's model name."""
    import hashlib

    if not path:
        return None
    p = Path(path)
    if not (p / "config.json").is_file():
        return None
    h = hashlib.sha256()
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "chat_template.jinja", "chat_template.json", "preprocessor_config.json", "processor_config.json"):
        if (p / name).is_file():
            h.update(name.encode() + b"\0" + (p / name).read_bytes())
    for w in sorted(list(p.glob("*.safetensors")) + list(p.glob("*.bin"))):
        h.update(f"{w.name}:{w.stat().st_size}".encode())
    return "sha256:" + h.hexdigest()[:16]
