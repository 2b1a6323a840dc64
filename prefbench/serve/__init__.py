"""A scorer as a reward server (``prefbench serve``) and its client. See docs/serve.md.

>>> from prefbench.serve import Client, flow_grpo_reward
>>> Client("http://127.0.0.1:8000").score("a red cube", ["a.png", "b.png"])   # doctest: +SKIP
[0.81, 0.34]

Nothing heavy is imported here: the client needs httpx and tenacity, the server FastAPI and
uvicorn (``pip install 'prefbench[serve]'``), each only when used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Client", "RemoteScoredItem", "ServeError", "batch_to_pil", "create_app", "flow_grpo_reward", "serve"]

_WHERE = {
    "Client": "prefbench.serve.client",
    "RemoteScoredItem": "prefbench.serve.client",
    "ServeError": "prefbench.serve.client",
    "batch_to_pil": "prefbench.serve.flow_grpo",
    "flow_grpo_reward": "prefbench.serve.flow_grpo",
    "create_app": "prefbench.serve.app",
    "serve": "prefbench.serve.server",
}


def require(*modules: str, what: str, kind: str) -> None:
    """Raise :class:`~prefbench.errors.MissingExtraError` (install ``prefbench[serve]``) unless
    every one of ``modules`` is installed."""
    import importlib.util

    from prefbench.errors import MissingExtraError

    gone = [m for m in modules if importlib.util.find_spec(m) is None]
    if gone:
        raise MissingExtraError(what, "serve", ", ".join(gone), kind=kind)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'prefbench.serve' has no attribute {name!r}")
