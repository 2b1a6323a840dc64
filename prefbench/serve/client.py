"""The reward server's client, :class:`Client` (its Flow-GRPO adapter, :func:`flow_grpo_reward`,
is :mod:`prefbench.serve.flow_grpo`; what a request carries and how an answer is checked,
:mod:`prefbench.serve.payloads`).

``Client(url).score(prompt, images)`` behaves like :meth:`prefbench.api.RewardScorer.score`:
one float per image, and a failed image raises :class:`~prefbench.api.ScoringError` unless
``on_error="nan"``. Connection errors and 5xx answers are retried with exponential backoff;
a 4xx is never retried (it raises :class:`ServeError` with the server's message).

Images are paths, ``PIL.Image`` objects, encoded bytes or ``(H, W, C)`` uint8 arrays; they are
encoded exactly as the in-process API encodes them (PIL and arrays as PNG), so the server
scores the same bytes that ``load_scorer(...).score`` would.
"""

from __future__ import annotations

import base64
import math
import threading
import time
from collections.abc import Iterable
from typing import Any

from prefbench.api import ON_ERROR, ScoresAndRanks, _check_choice, _unpack, raise_failures
from prefbench.errors import PrefbenchError, ServeError, UsageError  # noqa: F401  (ServeError re-exported)
from prefbench.serve.payloads import (  # noqa: F401  (RemoteScoredItem re-exported)
    IMAGE_FORMATS,
    RemoteScoredItem,
    answer_item,
    encode_image,
    is_array,
    request_chunks,
)


class _DeadlinePassed(Exception):
    """The call's deadline passed (never retried)."""


class _Retryable(Exception):
    """A 5xx answer, retried."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Client(ScoresAndRanks):
    """A client of ``prefbench serve``.

    ``url``: the server, e.g. ``http://127.0.0.1:8000``. ``token``: the bearer token, if the
    server has one. ``timeout``: the deadline of one call in seconds, every attempt and wait
    included (a server that drips its answer cannot hold a call past it). A connection error or
    a 5xx answer is retried for ``retry_for`` seconds (default 120: long enough for a server to
    restart and reload its model), with exponential backoff from ``backoff`` seconds (capped at
    ``max_backoff``); ``retries``, when given, also caps the extra attempts. A 4xx is never
    retried. ``on_error`` and ``mode``: the defaults of :meth:`score`.
    ``max_request_images``, ``max_request_mb``: :meth:`score_items` sends its items in requests of
    at most this many images (the server's ``--max-images``, 64 by default) and this many MiB of
    base64 (default 48, under the server's ``--max-body-mb`` of 64). ``image_format``: how PIL
    images and arrays are sent, ``png`` (default, lossless) or ``jpeg`` of ``jpeg_quality`` (95).
    ``transport``: an ``httpx`` transport (tests)."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 300.0, retries: int | None = None,
                 retry_for: float = 120.0, backoff: float = 0.5, max_backoff: float = 10.0, on_error: str = "raise",
                 mode: str | None = None, max_request_images: int = 64, max_request_mb: float = 48.0,
                 image_format: str = "png", jpeg_quality: int = 95, transport: Any = None):
        from prefbench.serve import require

        require("httpx", "tenacity", what="prefbench.serve.Client", kind="class")
        import httpx

        if token is not None and not (token.isascii() and token.isprintable()):
            raise UsageError("token must be printable ASCII (it travels in an HTTP header)")
        self.url = url.rstrip("/")
        self.retries = None if retries is None else int(retries)
        self.timeout, self.retry_for = float(timeout), float(retry_for)
        if not (math.isfinite(self.timeout) and self.timeout > 0) or not self.retry_for >= 0:
            raise UsageError(f"timeout must be a number of seconds > 0 and retry_for >= 0, got {timeout!r}, "
                             f"{retry_for!r}")
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        self.on_error = _check_choice("on_error", on_error, ON_ERROR)
        self.mode = mode
        self.max_request_images = max(1, int(max_request_images))
        self.max_request_bytes = int(float(max_request_mb) * 1024 * 1024)
        self.image_format = _check_choice("image_format", image_format, IMAGE_FORMATS)
        if not 1 <= int(jpeg_quality) <= 100:
            raise UsageError(f"jpeg_quality must be 1..100, got {jpeg_quality!r}")
        self.jpeg_quality = int(jpeg_quality)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:  # never shows the token
        return f"Client({self.url!r})"

    # -- HTTP --------------------------------------------------------------------------------
    def _send(self, method: str, path: str, deadline: float, kwargs: dict) -> Any:
        """One HTTP exchange, whole, by ``deadline`` (time.monotonic()): it runs on a thread of its
        own, which stops at its next chunk once the caller has given up on it."""
        import queue

        import httpx

        left = deadline - time.monotonic()
        if left <= 0:
            raise _DeadlinePassed()
        gave_up = threading.Event()
        out: queue.Queue = queue.Queue(maxsize=1)

        def work():
            try:
                with self._http.stream(method, path, timeout=left, **kwargs) as response:
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        if gave_up.is_set():
                            return
                        body += chunk
                    headers = {k: v for k, v in response.headers.items()
                               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")}
                    out.put(httpx.Response(response.status_code, headers=headers, content=bytes(body),
                                           request=response.request))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                out.put(exc)

        threading.Thread(target=work, daemon=True, name="prefbench-client").start()
        try:
            result = out.get(timeout=left)
        except queue.Empty:
            gave_up.set()
            raise _DeadlinePassed() from None
        if isinstance(result, BaseException):
            raise result
        return result

    def _request(self, method: str, path: str, **kwargs) -> Any:
        import httpx
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            stop_after_delay,
            stop_never,
            wait_exponential,
            wait_random,
        )

        start = time.monotonic()
        deadline = start + self.timeout
        backoff = wait_exponential(multiplier=self.backoff, max=self.max_backoff) + wait_random(0, self.backoff)

        def wait(retry_state):  # never sleep past the call's deadline
            return max(0.0, min(backoff(retry_state), deadline - time.monotonic()))

        def attempt():
            response = self._send(method, path, deadline, kwargs)
            if response.status_code >= 500:
                raise _Retryable(response.status_code, _message(response))
            if response.status_code >= 400:
                raise ServeError(f"{method} {self.url}{path}: {response.status_code} {_message(response)}",
                                 response.status_code)
            return response

        stop = stop_after_delay(self.retry_for) | (stop_never if self.retries is None
                                                   else stop_after_attempt(self.retries + 1))
        retrying = Retrying(stop=stop, reraise=False, wait=wait,
                            retry=retry_if_exception_type((_Retryable, httpx.TransportError)))
        try:
            response = retrying(attempt)
        except _DeadlinePassed:
            raise ServeError(f"{method} {self.url}{path}: no whole answer within the call's timeout of "
                             f"{self.timeout:g} s") from None
        except RetryError as exc:
            last = exc.last_attempt.exception()
            tries = exc.last_attempt.attempt_number
            if isinstance(last, _Retryable):
                raise ServeError(f"{method} {self.url}{path}: {last.status} {last.message} (after {tries} attempts)",
                                 last.status) from None
            raise ServeError(f"{method} {self.url}{path}: {type(last).__name__}: {last} (after {tries} attempts)") \
                from None
        return response

    def health(self) -> dict[str, Any]:
        """``GET /health``: ``{"status": "ok", "scorer": ...}``."""
        return self._request("GET", "/health").json()

    def info(self) -> dict[str, Any]:
        """``GET /v1/info``: scorer, model, options, versions and the server's limits."""
        return self._request("GET", "/v1/info").json()

    def metrics(self) -> str:
        """``GET /metrics``: Prometheus text."""
        return self._request("GET", "/metrics").text

    # -- scoring -------------------------------------------------------------------------------
    def score_items(self, items: Iterable[Any], *, on_error: str | None = None,
                    mode: str | None = None) -> list[RemoteScoredItem]:
        """Many prompts in one request: ``(prompt, images)`` pairs or ``{"prompt", "images"}``
        dicts. Every image gets a status and details; ``on_error`` as :meth:`score`."""

        on_error = _check_choice("on_error", on_error or self.on_error, ON_ERROR)
        entries = []
        for n, entry in enumerate(items):
            prompt, images = _unpack(entry, n)
            if not isinstance(prompt, str):
                raise UsageError(f"item {n}: prompt must be a string, got {type(prompt).__name__}")
            if is_array(images) or isinstance(images, (str, bytes)) or not isinstance(images, Iterable):
                raise UsageError(f"item {n}: images must be a list (of paths, PIL images, bytes or arrays)")
            encoded = [base64.b64encode(encode_image(image, k, self.image_format, self.jpeg_quality)).decode("ascii")
                       for k, image in enumerate(images)]
            entries.append({"prompt": prompt, "images": encoded})
        scored = []
        for chunk in request_chunks(entries, self.max_request_images, self.max_request_bytes):
            body: dict[str, Any] = {"items": chunk}
            if mode or self.mode:
                body["mode"] = mode or self.mode
            response = self._request("POST", "/v1/score", json=body)
            try:
                answer = response.json()
            except ValueError as exc:
                raise ServeError(f"POST {self.url}/v1/score: the answer is not JSON ({exc})") from None
            if not isinstance(answer, dict) or not isinstance(answer.get("items", ()), list):
                raise ServeError(f"POST {self.url}/v1/score: a malformed answer (not {{\"items\": [...]}})")
            if len(answer.get("items", ())) != len(chunk):
                raise ServeError(f"POST {self.url}/v1/score: the answer has {len(answer.get('items', ()))} items for "
                                 f"{len(chunk)} sent")
            scored += [answer_item(e, a, f"POST {self.url}/v1/score") for e, a in zip(chunk, answer["items"])]
        if on_error == "raise":
            raise_failures(scored)
        return scored


def _message(response) -> str:
    try:
        return str(response.json()["error"])
    except Exception:  # noqa: BLE001 - not our JSON (a proxy's page): show its start
        return response.text[:200] or response.reason_phrase
