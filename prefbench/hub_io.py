"""What the two download paths (datasets: :mod:`prefbench.data.download`; pinned weights and
files: :mod:`prefbench.pinned_download`) share about talking to a hub: is it offline, was an error
"unreachable", and quiet progress bars. A leaf: it imports nothing of prefbench."""

from __future__ import annotations

import contextlib

#: exception class names that mean "the hub cannot be reached" across huggingface_hub's HTTP clients
UNREACHABLE = {"ConnectError", "ConnectionError", "ConnectTimeout", "TimeoutException", "Timeout", "ReadTimeout",
               "ProxyError", "NetworkError", "RemoteProtocolError", "OfflineModeIsEnabled", "LocalEntryNotFoundError",
               "IncompleteSnapshotError"}


def _offline(hub) -> bool:
    check = getattr(hub.constants, "is_offline_mode", None)
    return bool(check() if callable(check) else getattr(hub.constants, "HF_HUB_OFFLINE", False))


def _unreachable(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if any(cls.__name__ in UNREACHABLE for cls in type(exc).__mro__):
            return True
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(status, int) and status >= 500:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def _progress_bars(hub, show: bool):
    utils = hub.utils
    if show or utils.are_progress_bars_disabled():
        yield
        return
    utils.disable_progress_bars()
    try:
        yield
    finally:
        utils.enable_progress_bars()
