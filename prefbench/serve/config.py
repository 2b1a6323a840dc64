"""``prefbench serve``'s options, each declared once with its default and help: the server (address,
auth, shutdown, log) and the budgets a request is held to. The CLI builds its flags from these
fields; :func:`prefbench.serve.app.create_app` takes the budgets' defaults from :data:`DEFAULTS`.
Imports nothing heavy (``prefbench serve --help`` stays light)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from prefbench.config_fields import non_negative_float, option, port, positive_float, positive_int

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServeConfig:
    host: str = option("127.0.0.1", help="address to listen on")
    port: int = option(8000, type=port, show_default=False,
                       help="port (default 8000; 0: a free port, printed on startup)")
    token_env: str | None = option(None, metavar="NAME",
                                   help="environment variable holding a bearer token that every request but /health "
                                        "must send (Authorization: Bearer ...); the token is never printed or logged")
    mode: str | None = option(None, choices=("anchor", "round_robin"),
                              help="default scoring mode of pairwise scorers (default anchor); a request may set its own")
    batch_size: int | None = option(None, type=positive_int,
                                    help="items per scorer call inside a batch (default: the scorer's)")
    log_level: str = option("info", choices=("critical", "error", "warning", "info", "debug"),
                            help="uvicorn's log level; info logs request lines (rate-limited)")
    shutdown_grace_s: float = option(10.0, flag="--shutdown-grace", type=non_negative_float,
                                     help="on SIGTERM: seconds the batch being scored may take to finish; waiting "
                                          "requests get 503 at once")
    max_connections: int = option(1024, type=positive_int,
                                  help="open connections past this many get 503 at once (uvicorn's limit_concurrency; "
                                       "slow clients cannot pile up without bound)")
    # -- the budgets (create_app's limits)
    max_batch_images: int = option(32, flag="--max-batch-size", type=positive_int,
                                   help="images per micro-batch: concurrent requests are scored together up to this "
                                        "many (1: no batching)")
    max_wait_ms: float = option(10.0, type=non_negative_float,
                                help="how long the oldest request waits for more to fill its batch")
    request_timeout_s: float = option(120.0, flag="--timeout", type=non_negative_float,
                                      help="seconds a request may wait and be scored before it gets 504; the work it "
                                           "bounds stops at the next scorer batch")
    max_body_mb: float = option(64.0, type=non_negative_float, help="largest request body, MiB")
    max_images: int = option(64, type=positive_int, help="most images in one request")
    max_pixels: int = option(4096 * 4096, type=positive_int, show_default=False,
                             help="largest image, width x height, checked from its header before decoding "
                                  "(default 4096*4096)")
    max_queue: int = option(1024, type=positive_int, help="requests waiting past this many get 503")
    #: the work one request may ask for, bounded so that it cannot outlive --timeout by much
    max_request_pixels: int = option(64 * MIB, type=positive_int, show_default=False,
                                     help="most pixels of all images of one request, from their headers "
                                          "(default 64*1024*1024)")
    max_comparisons: int = option(512, type=positive_int,
                                  help="pairwise scorers: most comparisons one request may ask for (anchor: n-1 per "
                                       "item, round_robin: n(n-1)/2)")
    body_timeout_s: float = option(60.0, flag="--receive-timeout", aliases=("--body-timeout",), type=positive_float,
                                   help="seconds a request, headers and body, may take to arrive (from its first "
                                        "byte; a new connection's from its opening) before 408 and a closed connection")

    #: the fields that are create_app's limits (the rest configure the server)
    LIMITS = ("max_batch_images", "max_wait_ms", "request_timeout_s", "max_images", "max_pixels", "max_queue",
              "max_request_pixels", "max_comparisons", "body_timeout_s")

    def limits(self) -> dict[str, Any]:
        """create_app's keyword arguments (the body limit in bytes)."""
        out = {name: getattr(self, name) for name in self.LIMITS}
        out["max_body_bytes"] = int(self.max_body_mb * MIB)
        return out

    def server_options(self) -> dict[str, Any]:
        """:func:`prefbench.serve.server.serve`'s keyword arguments other than the limits."""
        names = [f.name for f in dataclasses.fields(self) if f.name not in self.LIMITS and f.name != "max_body_mb"]
        return {name: getattr(self, name) for name in names}


#: create_app's default budgets
DEFAULTS: dict[str, Any] = ServeConfig().limits()
