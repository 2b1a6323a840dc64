"""Finding and loading model weights, with errors a user can act on offline.

Shared by the encoder baselines, the VLM scorers and the trainer: a mistyped path, an empty
folder or an unreachable hub id each end in one :class:`WeightsError` line (CLI exit 2) that
says what to provide, never a transformers or hub traceback.

Torch, transformers and huggingface_hub are imported inside functions only, so importing this
module stays cheap (``prefbench --help`` must not load a framework).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefbench.errors import UsageError, WeightsError  # noqa: F401  (WeightsError re-exported)

#: file endings that name a weights file, never a hub repo
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def names_a_path(name: str) -> bool:
    """True when ``name`` cannot be a hub repo id ("org/name" or a legacy bare "name"), so that
    a missing ``name`` is a missing local file or folder rather than something to download."""
    return (name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
            or Path(name).suffix in WEIGHT_SUFFIXES)


#: seconds the one reachability check of the hub waits for an answer
HUB_PROBE_TIMEOUT_S = 3.0
_reachable: dict[str, bool] = {}


def hub_endpoint() -> str:
    """The hub ``huggingface_hub`` talks to (``HF_ENDPOINT``, default https://huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the hub answers at all (any HTTP answer counts), asked once per process and
    endpoint with a short timeout. huggingface_hub itself retries a refused or silent hub for
    about 50 s per file before it gives up; this is the fail-fast check in front of that."""
    endpoint = hub_endpoint()
    if endpoint not in _reachable:
        import httpx

        try:
            httpx.head(endpoint, timeout=timeout, follow_redirects=False)
            _reachable[endpoint] = True
        except httpx.HTTPError:  # refused, timed out, no route, bad TLS: no hub to ask
            _reachable[endpoint] = False
    return _reachable[endpoint]


@contextmanager
def hub_or_cache() -> Iterator[bool]:
    """Load from the hub if it answers; otherwise in huggingface_hub's offline mode, so that a
    model already in the local cache still loads and a missing one fails at once instead of
    after a minute of retries. Yields whether the hub is used (False: offline, set by the
    user's ``HF_HUB_OFFLINE=1`` or because the hub did not answer)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        yield False
        return
    if hub_reachable():
        yield True
        return
    constants.HF_HUB_OFFLINE = True  # read at call time by huggingface_hub and transformers alike
    try:
        yield False
    finally:
        constants.HF_HUB_OFFLINE = False


def quiet_progress_bars() -> None:
    """``--no-progress`` silences the frameworks' bars too (transformers' "Loading weights",
    huggingface_hub's downloads): through the environment for what is not imported yet, through
    their switches for what is."""
    import sys

    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging

        logging.disable_progress_bar()


def _offline_reason() -> str:
    """Why the hub was not asked, for an error line."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:  # the user's setting (hub_or_cache has restored its own by now)
        return "HF_HUB_OFFLINE is set"
    return f"the hub at {hub_endpoint()} did not answer within {HUB_PROBE_TIMEOUT_S:g} s"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def hub_file(model: str, filename: str, what: str) -> Path:
    """``model`` is a local file, a local folder holding ``filename``, or a hub repo id from
    which ``filename`` is downloaded. Offline (or without ``huggingface_hub``) the error says
    which file to put where."""
    path = Path(os.path.expanduser(model))
    if path.is_file():
        return path
    if path.is_dir():
        if (path / filename).is_file():
            return path / filename
        raise WeightsError(f"{what}: {path} has no {filename}; put the file there or pass its path")
    if names_a_path(model):
        raise WeightsError(f"{what}: {model} does not exist (expected {filename} or a folder holding it)")
    online = True
    try:
        from huggingface_hub import hf_hub_download

        with hub_or_cache() as online:
            return Path(hf_hub_download(model, filename))
    except Exception as exc:  # offline, unknown repo, missing package: one message for all
        raise WeightsError(
            f"{what}: {model} is not a local file or folder, and {filename} "
            + (f"cannot be fetched from the hub repo {model!r}" if online
               else f"is not in the local hub cache ({_offline_reason()})")
            + (f" ({type(exc).__name__})" if online else "") + "; download it where the hub is reachable "
            f"(hf download {model} {filename} --local-dir DIR) and pass the file or DIR instead"
        ) from None


def load_state_dict(path: Path, what: str) -> dict:
    """Tensors from a safetensors file or a torch file read with ``weights_only=True`` (never an
    arbitrary pickle). A checkpoint wrapping its weights under ``state_dict`` is unwrapped."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{what}: cannot read {path}: {exc}") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{what}: {path} does not hold a flat dict of tensors")
    return sd


MODEL_FOLDER = "a model folder: config.json, the weights and the tokenizer / processor files"


def check_model_folder(name: str, what: str) -> None:
    """A cheap check before slow work (reading a dataset, loading weights): a ``name`` that can
    only be local must be a folder holding ``config.json``. Hub ids pass; they are checked when
    they load (:func:`from_pretrained`)."""
    local = Path(os.path.expanduser(name))
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise WeightsError(f"{what}: {local} has no config.json (expected {MODEL_FOLDER})")
    elif local.exists():
        raise WeightsError(f"{what}: {local} is a file; pass the folder that holds the model ({MODEL_FOLDER})")
    elif names_a_path(name):
        raise WeightsError(f"{what}: {name} does not exist (expected {MODEL_FOLDER})")


def from_pretrained(loader: Callable[..., Any], name: str, what: str, *, hint: str = "", **kwargs):
    """``loader(name, **kwargs)`` (a transformers ``from_pretrained``) with an offline error that
    says what to provide. ``hint`` is added to the error for a local folder that does not load;
    ``dtype=`` is passed as ``torch_dtype`` to transformers 4."""
    if "dtype" in kwargs:
        import transformers

        if int(transformers.__version__.split(".")[0]) < 5:
            kwargs["torch_dtype"] = kwargs.pop("dtype")
    local = Path(os.path.expanduser(name))
    online = True
    try:
        if local.exists() or names_a_path(name):
            return loader(name, **kwargs)
        with hub_or_cache() as online:  # a hub id: fail fast when the hub does not answer
            return loader(name, **kwargs)
    except (OSError, ValueError) as exc:  # ValueError: a folder without the files transformers needs
        if local.is_dir():
            raise WeightsError(f"{what}: cannot load {local}: {_first_line(exc)}" + (f" ({hint})" if hint else "")) \
                from None
        if names_a_path(name):
            raise WeightsError(f"{what}: {name} does not exist (expected {MODEL_FOLDER})") from None
        where = "reachable on the hub" if online else f"in the local hub cache ({_offline_reason()})"
        raise WeightsError(
            f"{what}: {name!r} is neither a local folder nor {where}; download it where the "
            f"hub is reachable (hf download {name} --local-dir DIR) and pass DIR "
            f"(config.json, model.safetensors or pytorch_model.bin, and the tokenizer / preprocessor files)"
        ) from None
