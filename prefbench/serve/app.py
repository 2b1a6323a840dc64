"""The reward server's ASGI app (FastAPI): ``POST /v1/score``, ``GET /health``, ``GET /v1/info``,
``GET /metrics``. The wire format and the limits are in docs/serve.md.

Only JSON and base64 come in; nothing is ever unpickled. Every refusal is a 4xx with a JSON
body ``{"error": "..."}`` that says what was wrong; the server goes on serving.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from prefbench.errors import UsageError
from prefbench.serve.batcher import Expired, MicroBatcher, QueueFull
from prefbench.serve.config import DEFAULTS
from prefbench.serve.metrics import CONTENT_TYPE_LATEST, ServerMetrics
from prefbench.serve.wire import ApiError, item_json, jsonable, parse_request, read_body, redact


class _CountRequests:
    """Pure ASGI middleware: counts every HTTP answer by endpoint and code; times /v1/score."""

    def __init__(self, app, metrics: ServerMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        code = {"status": 500}
        start = time.perf_counter()

        async def send_status(message):
            if message["type"] == "http.response.start":
                code["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope.get("path", "")
            self.metrics.count(path, code["status"])
            if path == "/v1/score" and code["status"] == 200:
                self.metrics.latency.observe(time.perf_counter() - start)


async def _until_disconnected(request: Request) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(0.05)


def create_app(scorer, *, max_batch_images: int = DEFAULTS["max_batch_images"],
               max_wait_ms: float = DEFAULTS["max_wait_ms"], request_timeout_s: float = DEFAULTS["request_timeout_s"],
               max_body_bytes: int = DEFAULTS["max_body_bytes"], max_images: int = DEFAULTS["max_images"],
               max_pixels: int = DEFAULTS["max_pixels"], token: str | None = None,
               max_queue: int = DEFAULTS["max_queue"], mode: str | None = None,
               max_request_pixels: int = DEFAULTS["max_request_pixels"],
               max_comparisons: int = DEFAULTS["max_comparisons"],
               body_timeout_s: float = DEFAULTS["body_timeout_s"]) -> FastAPI:
    """The reward server for a loaded :class:`~prefbench.api.RewardScorer`.

    ``max_batch_images`` / ``max_wait_ms``: a micro-batch is scored once it holds that many
    images or the oldest request has waited that long (1 image: no batching).
    ``request_timeout_s``: a request not answered by then gets 504 and is dropped.
    ``max_body_bytes``, ``max_images`` (per request, all items together), ``max_pixels`` (per
    image, read from its header before decoding): limits, refused with 413 / 422.
    ``token``: when set, every endpoint but ``/health`` needs ``Authorization: Bearer <token>``.
    ``max_queue``: requests waiting past this many get 503 (retry later).
    ``max_request_pixels``, ``max_comparisons``: the work of one request (422 past them);
    ``body_timeout_s``: seconds a body may take to arrive (408 past it; ``prefbench serve``'s
    connections apply it to the headers too, from the request's first byte: :mod:`prefbench.serve.protocol`).
    ``mode``: the default scoring mode (default: the scorer's). The app does not close the scorer."""
    metrics: ServerMetrics
    batcher = MicroBatcher(scorer, max_batch_images=max_batch_images, max_wait_s=max_wait_ms / 1000.0,
                           max_queue=max_queue, on_batch=lambda *a: metrics.on_batch(*a))
    metrics = ServerMetrics(lambda: batcher.queue_depth, lambda: batcher.queued_images)
    default_mode = mode or scorer.mode
    pairwise = scorer.pairwise
    gives_sigma = scorer.gives_sigma
    token_bytes = token.encode() if token else None
    settings = {"max_batch_images": max_batch_images, "max_wait_ms": max_wait_ms,
                "request_timeout_s": request_timeout_s, "max_body_bytes": max_body_bytes, "max_images": max_images,
                "max_pixels": max_pixels, "max_queue": max_queue, "mode": default_mode, "auth": token is not None,
                "max_request_pixels": max_request_pixels, "max_comparisons": max_comparisons,
                "body_timeout_s": body_timeout_s}
    parse_options = {"max_images": max_images, "max_pixels": max_pixels, "default_mode": default_mode,
                     "pairwise": pairwise, "max_request_pixels": max_request_pixels,
                     "max_comparisons": max_comparisons, "gives_sigma": gives_sigma}

    @asynccontextmanager
    async def lifespan(app):
        yield
        await batcher.aclose()

    app = FastAPI(title="prefbench reward server", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.batcher, app.state.metrics, app.state.scorer = batcher, metrics, scorer
    app.add_middleware(_CountRequests, metrics=metrics)

    _add_error_handlers(app)

    def check_token(request: Request) -> None:
        _check_token(request, token_bytes)

    @app.get("/health")
    async def health():
        return {"status": "ok", "scorer": scorer.name}

    @app.get("/v1/info")
    async def info(request: Request):
        check_token(request)
        return JSONResponse(jsonable(redact(dict(scorer.info(), server=settings))))

    @app.get("/metrics")
    async def prometheus(request: Request):
        check_token(request)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/score")
    async def score(request: Request):
        check_token(request)
        return await _score(request, batcher, metrics, parse_options, max_body_bytes=max_body_bytes,
                            body_timeout_s=body_timeout_s, request_timeout_s=request_timeout_s)

    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every refusal as JSON ``{"error": ...}``: an :class:`ApiError` with its status and headers,
    and Starlette's own (404, 405, ...) the same way."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


def _check_token(request: Request, token_bytes: bytes | None) -> None:
    """401 unless the request carries ``Authorization: Bearer <token>`` (compared in constant
    time); nothing to check when the server has no token."""
    if token_bytes is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": "Bearer"}
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "missing bearer token: send the header 'Authorization: Bearer <token>'", challenge)
    if not hmac.compare_digest(given.strip().encode(), token_bytes):
        raise ApiError(401, "wrong token", challenge)


async def _score(request: Request, batcher: MicroBatcher, metrics: ServerMetrics, parse_options: dict[str, Any], *,
                 max_body_bytes: int, body_timeout_s: float, request_timeout_s: float) -> Response:
    """``POST /v1/score`` once the token is checked: read and parse the body, queue its items for a
    micro-batch, and answer with the scores; 499 (nobody to answer) when the client goes away
    first, 504 past ``request_timeout_s``. ``parse_options``: :func:`parse_request`'s limits."""
    try:
        body = await read_body(request, max_body_bytes, body_timeout_s)
    except ClientDisconnect:  # gone before its body arrived
        metrics.dropped.labels("disconnected").inc()
        return Response(status_code=499)
    items, single, wanted = await asyncio.to_thread(partial(parse_request, body, **parse_options))
    try:
        future = batcher.submit(items, timeout_s=request_timeout_s)
    except QueueFull as exc:
        raise ApiError(503, str(exc), {"Retry-After": "1"}) from None
    gone = asyncio.ensure_future(_until_disconnected(request))
    try:
        done, _ = await asyncio.wait({future, gone}, timeout=request_timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server is going down: never score it
        future.cancel()
        raise
    finally:
        gone.cancel()
    if future not in done:
        future.cancel()  # dropped before its batch, or its results discarded after
        if gone in done:
            metrics.dropped.labels("disconnected").inc()
            return Response(status_code=499)  # nobody reads it
        metrics.dropped.labels("timeout").inc()
        raise ApiError(504, f"not scored within the server's timeout of {request_timeout_s:g} s; retry later")
    try:
        scored = future.result()
    except Expired:  # its deadline passed in the queue or between the scorer's batches: its work stopped
        metrics.dropped.labels("timeout").inc()
        raise ApiError(504, f"not scored within the server's timeout of {request_timeout_s:g} s; retry later") \
            from None
    except QueueFull as exc:
        raise ApiError(503, str(exc), {"Retry-After": "1"}) from None
    except UsageError as exc:  # an item the scorer refuses as a whole
        raise ApiError(400, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the scorer failed on this request as a whole
        raise ApiError(500, f"scoring failed: {exc}") from None
    out = [item_json(s, wanted) for s in scored]
    for s in scored:
        for status in s.statuses:
            metrics.images.labels(status).inc()
    return JSONResponse(out[0] if single else {"items": out})
