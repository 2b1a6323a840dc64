"""The wire format of ``POST /v1/score`` (docs/serve.md), without the app: a body read within its
limits, parsed into :class:`~prefbench.serve.batcher.WireItem` objects with every budget
checked before any pixel is decoded, and the answers' strict JSON. Each refusal is an
:class:`ApiError`, the 4xx the app answers with.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import math
from typing import TYPE_CHECKING, Any

from prefbench.api import MODES, check_unicode
from prefbench.errors import UsageError
from prefbench.serve.batcher import WireItem
from prefbench.serve.config import DEFAULTS

if TYPE_CHECKING:
    from starlette.requests import Request


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
    entries, single = _entries(obj)
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


def _entries(obj: dict) -> tuple[list[dict], bool]:
    """The body's items (one item when it is ``{"prompt", "images"}`` itself, then ``single``),
    each checked to hold a prompt string and a non-empty list of images (400 otherwise)."""
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
    return entries, single


async def read_body(request: Request, limit: int, deadline_s: float = DEFAULTS["body_timeout_s"]) -> bytes:
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


def redact(value: Any) -> Any:
    from prefbench.provenance import redact_url

    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
