"""``prefbench serve``: load a scorer, then serve it with uvicorn on one socket.

The model loads before the socket accepts anything; then one line goes to stderr,
``serving <scorer> (<model>) on http://HOST:PORT``, with the real port when ``--port 0`` asked
for a free one. The token (``--token-env NAME``) is read from the environment and never
printed, logged or shown by ``/v1/info``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from typing import Any

from prefbench.errors import UsageError


def read_token(env_name: str | None) -> str | None:
    """The bearer token held by environment variable ``env_name`` (None: no auth)."""
    if not env_name:
        return None
    value = os.environ.get(env_name, "").strip()
    if not value:
        raise UsageError(f"--token-env {env_name}: that environment variable is not set or empty")
    if not (value.isascii() and value.isprintable()):  # an HTTP header carries ASCII: it could never match
        raise UsageError(f"--token-env {env_name}: the token must be printable ASCII (it travels in an HTTP header)")
    return value


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535 (0: a free port), got {port!r}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: cannot resolve ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(scorer_name: str, model: str | None = None, engine: str | None = None, *, options: dict[str, Any] | None = None,
          host: str = "127.0.0.1", port: int = 8000, token_env: str | None = None, seed: int = 0,
          mode: str | None = None, batch_size: int | None = None, log_level: str = "info",
          shutdown_grace_s: float = 10.0, max_connections: int = 1024, **limits: Any) -> int:
    """Load the scorer, bind, and serve until SIGINT/SIGTERM. ``limits``: :func:`create_app`'s.

    On SIGTERM (or Ctrl-C) the socket stops accepting, waiting requests get 503 with
    ``Retry-After`` at once, the batch being scored has ``shutdown_grace_s`` seconds to finish
    (then its requests get 503 too), and the process exits: a scoring call that is still running
    then is not waited for."""
    from prefbench.serve import require

    require("fastapi", "uvicorn", "prometheus_client", what="prefbench serve", kind="command")
    import uvicorn
    from prometheus_client import disable_created_metrics

    from prefbench.api import load_scorer
    from prefbench.serve.app import DEFAULTS, create_app
    from prefbench.serve.logs import install as limit_log
    from prefbench.serve.protocol import deadline_protocol

    disable_created_metrics()  # no *_created series: this process is the server alone
    for key, flag in (("request_timeout_s", "--timeout"), ("max_body_bytes", "--max-body-mb")):
        if key in limits and not limits[key] > 0:
            raise UsageError(f"{flag} must be more than 0")
    token = read_token(token_env)
    scorer = load_scorer(scorer_name, model, engine, seed=seed, mode=mode or "anchor", batch_size=batch_size,
                         on_error="nan", **(options or {}))
    try:
        scorer.setup()  # load the weights now: the first request should not pay for it
        app = create_app(scorer, token=token, mode=mode, **limits)
        sock = bind(host, port)
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        model_id = (scorer.model or {}).get("id") or "no model"
        if token is None and host not in ("127.0.0.1", "localhost", "::1"):
            print(f"prefbench: warning: serving on {host} with no token (--token-env); anyone who can reach this "
                  "port can use the scorer", file=sys.stderr)
        note = f"; {scorer.note}" if scorer.note else ""
        print(f"serving {scorer.name} ({model_id}) on http://{shown}:{bound_port}{note}", file=sys.stderr, flush=True)
        # a request must arrive whole, headers and body, within --receive-timeout (protocol.py)
        receive_s = limits.get("body_timeout_s", DEFAULTS["body_timeout_s"])
        config = uvicorn.Config(app, log_level=log_level, access_log=log_level in ("debug", "info", "trace"),
                                timeout_graceful_shutdown=shutdown_grace_s + 2, server_header=False,
                                limit_concurrency=max_connections, http=deadline_protocol(receive_s))
        log_limit = limit_log()  # uvicorn's handlers exist now: a flood of bad connections writes a bounded log
        batcher = app.state.batcher

        class Server(uvicorn.Server):
            def handle_exit(self, sig, frame):
                if not self.should_exit and self.started and getattr(self, "_loop", None) is not None:
                    self._loop.call_soon_threadsafe(batcher.drain, shutdown_grace_s)
                super().handle_exit(sig, frame)

            async def startup(self, sockets=None):
                import asyncio

                self._loop = asyncio.get_running_loop()
                await super().startup(sockets=sockets)

        server = Server(config)

        def on_sigterm(signum, frame):
            # uvicorn shuts down gracefully on SIGTERM, then raises it again for this handler:
            # after a graceful shutdown that is a clean exit (the scorer is closed below)
            if not server.started:
                raise SystemExit(128 + signum)

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_sigterm)
        server.run(sockets=[sock])
        log_limit.flush()
        if batcher.scoring_now:  # a scoring call outlived the grace: do not wait for it (nor close under it)
            print(f"prefbench serve: a scoring call was still running {shutdown_grace_s:g} s after the shutdown "
                  "began; exiting without waiting for it", file=sys.stderr, flush=True)
            os._exit(0)
    finally:
        scorer.close()
    return 0
