"""The reward server's ASGI app (FastAPI): ``POST /v1/score``, ``GET /health``, ``GET /v1/info``,
``GET /metrics``. The wire format and the limits are in docs/serve.md.

Only JSON and base64 come in; nothing is ever unpickled. Every refusal is a 4xx with a JSON
body ``{"error": "..."}`` that says what was wrong; the server goes on serving.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import io
import json
import math
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from prefbench.api import MODES, check_unicode
from prefbench.errors import UsageError
from prefbench.serve.batcher import Expired, MicroBatcher, QueueFull, WireItem
from prefbench.serve.config import DEFAULTS
from prefbench.serve.metrics import CONTENT_TYPE_LATEST, ServerMetrics


class ApiError(Exception):
    """A refusal: HTTP ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


# -- request parsing (runs in a worker thread: base64 and header checks of big bodies) ----------
def _decode_image(text: Any, where: str, max_pixels: int) -> tuple[bytes, int]:
    if not isinstance(text, str):
        raise ApiError(400, f"{where}: expected a base64 string, got {type(text).__name__}")
    if text.startswith("data:"):  # a data URL: data:image/png;base64,....
        head, sep, text = text.partition(",")
        if not sep or not head.endswith(";base64"):
            raise ApiError(400, f"{where}: a data URL must be base64 (data:image/png;base64,...)")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, f"{where}: not valid base64 ({exc})") from None
    if not data:
        raise ApiError(400, f"{where}: empty image")
    return data, _check_pixels(data, where, max_pixels)


def _check_pixels(data: bytes, where: str, max_pixels: int) -> int:
    """Refuse an image whose header declares more than ``max_pixels`` before any pixel is
    decoded (a decompression bomb costs nothing). Bytes PIL cannot identify pass: the scorer
    reports them as that image's error. Returns the pixels the header declares (0: unknown).
    A JPEG over the decoding budget (PREFBENCH_MAX_JPEG_SCANS ...) is refused here too."""
    from prefbench.data.images import open_checked
    from prefbench.errors import ImageError

    try:
        img = open_checked(io.BytesIO(data), where, max_pixels)  # reads the header only
    except ImageError as exc:
        raise ApiError(422, f"{exc}; the server's limit is {max_pixels} pixels, send a smaller image") from None
    except Exception:  # noqa: BLE001 - not an image PIL knows: a per-image error, from the scorer
        return 0
    width, height = img.size
    img.close()
    return width * height


#: what a request may ask for in ``"return"``: scores always come; ``sigma`` adds ``"sigmas"``
RETURN_FIELDS = ("score", "sigma")


def return_fields(obj: dict, gives_sigma: bool) -> tuple[str, ...]:
    """The request's ``"return"`` list, checked: known names only, ``sigma`` only from a scorer
    that gives one (400 otherwise)."""
    wanted = obj.get("return", ["score"])
    if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
        raise ApiError(400, f"\"return\" must be a list of names from {', '.join(RETURN_FIELDS)}")
    unknown = [w for w in wanted if w not in RETURN_FIELDS]
    if unknown:
        raise ApiError(400, f"\"return\": unknown {', '.join(map(repr, unknown))}; known: {', '.join(RETURN_FIELDS)}")
    if "sigma" in wanted and not gives_sigma:
        raise ApiError(400, "\"return\": this scorer gives no sigma (hpsv3 does)")
    return tuple(dict.fromkeys(wanted))


def parse_request(body: bytes, *, max_images: int, max_pixels: int, default_mode: str, pairwise: bool,
                  max_request_pixels: int = DEFAULTS["max_request_pixels"],
                  max_comparisons: int = DEFAULTS["max_comparisons"],
                  gives_sigma: bool = False) -> tuple[list[WireItem], bool, tuple[str, ...]]:
    """The items of a ``/v1/score`` body, whether it was a single item (not ``{"items": [...]}``)
    and the body's ``"return"`` list (:func:`return_fields`).
    The request's work is bounded: all its images' pixels (from their headers) at most
    ``max_request_pixels``, and a pairwise scorer's comparisons (anchor: n-1 per item,
    round_robin: n(n-1)/2) at most ``max_comparisons``; 422 past either."""
    try:
        obj = json.loads(body)
    except RecursionError:
        raise ApiError(400, "the body is JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not JSON ({exc}); send {{\"prompt\": ..., \"images\": [base64, ...]}}") \
            from None
    if not isinstance(obj, dict):
        raise ApiError(400, f"expected a JSON object, got {type(obj).__name__}")
    mode = obj.get("mode") or default_mode
    wanted = return_fields(obj, gives_sigma)
    if "items" in obj:
        if "prompt" in obj or "images" in obj:
            raise ApiError(400, "send either {\"prompt\", \"images\"} or {\"items\": [...]}, not both")
        entries, single = obj["items"], False
        if not isinstance(entries, list) or not entries:
            raise ApiError(400, "\"items\" must be a non-empty list of {\"prompt\": ..., \"images\": [...]}")
    else:
        entries, single = [obj], True
    for n, entry in enumerate(entries):
        where = "the request" if single else f"item {n}"
        if not isinstance(entry, dict):
            raise ApiError(400, f"{where}: expected an object with \"prompt\" and \"images\"")
        if not isinstance(entry.get("prompt"), str):
            raise ApiError(400, f"{where}: \"prompt\" must be a string")
        try:
            check_unicode(entry["prompt"], f"{where}: \"prompt\"")
        except UsageError as exc:
            raise ApiError(400, str(exc)) from None
        if not isinstance(entry.get("images"), list) or not entry["images"]:
            raise ApiError(400, f"{where}: \"images\" must be a non-empty list of base64 strings")
    total = sum(len(e["images"]) for e in entries)
    if total > max_images:
        raise ApiError(422, f"too many images: {total} in one request; the server's limit is {max_images} "
                            "(split the request)")
    items, comparisons, pixels = [], 0, 0
    for n, entry in enumerate(entries):
        where = "" if single else f"item {n} "
        item_mode = entry.get("mode") or mode
        if item_mode not in MODES:
            raise ApiError(400, f"{where}mode must be one of {', '.join(MODES)}, got {item_mode!r}".lstrip())
        if item_mode == "round_robin":
            if not pairwise:
                raise ApiError(400, "mode 'round_robin' needs a pairwise scorer (anchor_pairwise); this server's "
                                    "scorer scores each image on its own")
            if len(entry["images"]) < 2:
                raise ApiError(400, f"{where}mode 'round_robin' needs at least two images".lstrip())
        if pairwise:
            k = len(entry["images"])
            comparisons += k * (k - 1) // 2 if item_mode == "round_robin" else k - 1
            if comparisons > max_comparisons:
                raise ApiError(422, f"too many comparisons: {comparisons} or more in one request (round_robin compares "
                                    f"every pair); the server's limit is {max_comparisons} (split the request)")
        images = []
        for k, text in enumerate(entry["images"]):
            data, n_pixels = _decode_image(text, f"{where}image {k}", max_pixels)
            pixels += n_pixels
            if pixels > max_request_pixels:
                raise ApiError(422, f"too many pixels: the images up to {where}image {k} hold {pixels}; the server's "
                                    f"limit per request is {max_request_pixels} (send smaller images or split the "
                                    "request)")
            images.append(data)
        items.append(WireItem(entry["prompt"], images, item_mode))
    return items, single, wanted


# -- responses ---------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """``value`` as strict JSON: NaN and infinities -> null, numpy scalars -> numbers,
    anything else unknown -> its string."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a numpy / torch scalar
        return jsonable(value.item())
    return str(value)


def item_json(scored, wanted: tuple[str, ...] = ("score",)) -> dict[str, Any]:
    """One :class:`~prefbench.api.ScoredItem` on the wire; a failed image's error is in its details;
    ``"sigmas"`` (one per image, null for a failed one) when ``wanted`` names sigma."""
    details = []
    for detail, error in zip(scored.details, scored.errors):
        details.append(dict(detail, error=error) if error else detail)
    out = {"item_id": scored.item_id, "mode": scored.mode, "scores": scored.scores,
           "statuses": scored.statuses, "details": details}
    if "sigma" in wanted:
        out["sigmas"] = scored.sigmas
    return jsonable(out)


def _redact(value: Any) -> Any:
    from prefbench.provenance import redact_url

    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


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


async def _read_body(request: Request, limit: int, deadline_s: float = DEFAULTS["body_timeout_s"]) -> bytes:
    """The body, at most ``limit`` bytes (413 past it), arrived whole within ``deadline_s``
    (408 past it: a body dripped at 1 byte/s holds a connection no longer). A body somewhat
    over the limit is read to its end and dropped so that the client can read the 413 before
    the connection closes; one past twice the limit is cut off."""
    try:
        async with asyncio.timeout(deadline_s):
            return await _read_body_now(request, limit)
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within the server's {deadline_s:g} s",
                       {"Connection": "close"}) from None


async def _read_body_now(request: Request, limit: int) -> bytes:
    drain_to = 2 * limit
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_n = int(declared)
        except ValueError:
            raise ApiError(400, f"bad Content-Length {declared!r}") from None
        if declared_n > drain_to:
            raise ApiError(413, f"body of {declared_n} bytes exceeds the server's limit of {limit} bytes")
    buf, size = bytearray(), 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            buf += chunk
        elif size > drain_to:
            break
    if size > limit:
        raise ApiError(413, f"body of {size if size <= drain_to else 'more than ' + str(drain_to)} bytes exceeds "
                            f"the server's limit of {limit} bytes")
    return bytes(buf)


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

    @asynccontextmanager
    async def lifespan(app):
        yield
        await batcher.aclose()

    app = FastAPI(title="prefbench reward server", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.batcher, app.state.metrics, app.state.scorer = batcher, metrics, scorer
    app.add_middleware(_CountRequests, metrics=metrics)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    def check_token(request: Request) -> None:
        if token_bytes is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": "Bearer"}
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "missing bearer token: send the header 'Authorization: Bearer <token>'", challenge)
        if not hmac.compare_digest(given.strip().encode(), token_bytes):
            raise ApiError(401, "wrong token", challenge)

    @app.get("/health")
    async def health():
        return {"status": "ok", "scorer": scorer.name}

    @app.get("/v1/info")
    async def info(request: Request):
        check_token(request)
        return JSONResponse(jsonable(_redact(dict(scorer.info(), server=settings))))

    @app.get("/metrics")
    async def prometheus(request: Request):
        check_token(request)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/score")
    async def score(request: Request):
        check_token(request)
        try:
            body = await _read_body(request, max_body_bytes, body_timeout_s)
        except ClientDisconnect:  # gone before its body arrived
            metrics.dropped.labels("disconnected").inc()
            return Response(status_code=499)
        items, single, wanted = await asyncio.to_thread(
            parse_request, body, max_images=max_images, max_pixels=max_pixels, default_mode=default_mode,
            pairwise=pairwise, max_request_pixels=max_request_pixels, max_comparisons=max_comparisons,
            gives_sigma=gives_sigma)
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

    return app
