"""The reward server's client, :class:`Client`, and :func:`flow_grpo_reward`, its adapter to
Flow-GRPO's reward signature.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prefbench.api import (
    ON_ERROR,
    ScoresAndRanks,
    ScoringError,
    _check_choice,
    _image_bytes,
    _unpack,
    raise_failures,
    rank_scores,
)
from prefbench.errors import PrefbenchError, ServeError, UsageError  # noqa: F401  (ServeError re-exported)


class _DeadlinePassed(Exception):
    """The call's deadline passed (never retried)."""


class _Retryable(Exception):
    """A 5xx answer, retried."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class RemoteScoredItem:
    """One item as the server scored it: the properties of :class:`prefbench.api.ScoredItem`."""

    prompt: str
    scores: list[float | None]
    statuses: list[str]
    details: list[dict] = field(default_factory=list)
    item_id: str = ""
    mode: str = "anchor"

    @property
    def errors(self) -> list[str | None]:
        return [d.get("error") if s != "ok" else None for s, d in zip(self.statuses, self.details)]

    @property
    def ok(self) -> bool:
        return all(s == "ok" for s in self.statuses)

    def ranks(self) -> list[int]:
        return rank_scores(self.scores)


IMAGE_FORMATS = ("png", "jpeg")


def encode_image(image: Any, n: int = 0, image_format: str = "png", jpeg_quality: int = 95) -> bytes:
    """Encoded bytes of one image: bytes as they are, a path's file, PIL and arrays as PNG
    (lossless, the API's bytes) or, with ``image_format="jpeg"``, JPEG of ``jpeg_quality``
    (a tenth of the size of a 1024x1024 PNG; the scores then differ slightly from the PNG's)."""

    if _is_array(image):
        image = _array_to_pil(image)
    if image_format == "jpeg" and hasattr(image, "save") and hasattr(image, "mode"):
        import io

        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=int(jpeg_quality))
        return buf.getvalue()
    data, why = _image_bytes(image, n)
    if data is None:
        from prefbench.errors import ImageError

        raise ImageError(f"image {n}: {why}")
    return data


def _is_array(x: Any) -> bool:
    return hasattr(x, "__array_interface__") and not hasattr(x, "save")


def _array_to_pil(array: Any):
    """An (H, W, C) or (H, W) uint8 array (floats in [0, 1] are scaled) as a PIL image."""
    import numpy as np
    from PIL import Image

    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = (a.astype(np.float64) * 255).round().clip(0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise UsageError(f"an image array must be (H, W, 3), (H, W, 4) or (H, W), got shape {a.shape}")
    return Image.fromarray(a)


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
            if _is_array(images) or isinstance(images, (str, bytes)) or not isinstance(images, Iterable):
                raise UsageError(f"item {n}: images must be a list (of paths, PIL images, bytes or arrays)")
            encoded = [base64.b64encode(encode_image(image, k, self.image_format, self.jpeg_quality)).decode("ascii")
                       for k, image in enumerate(images)]
            entries.append({"prompt": prompt, "images": encoded})
        scored = []
        for chunk in _chunks(entries, self.max_request_images, self.max_request_bytes):
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
            scored += [_answer_item(e, a, f"POST {self.url}/v1/score") for e, a in zip(chunk, answer["items"])]
        if on_error == "raise":
            raise_failures(scored)
        return scored


def _answer_item(entry: dict, answer: Any, where: str) -> RemoteScoredItem:
    """One answered item, checked: a malformed answer raises ServeError; an ``ok`` whose score
    is not a finite number is that image's error (never a NaN reward with status ok)."""
    n = len(entry["images"])
    try:
        scores, statuses = list(answer["scores"]), list(answer["statuses"])
        details = list(answer.get("details") or [{}] * n)
    except (KeyError, TypeError) as exc:
        raise ServeError(f"{where}: a malformed answer ({type(exc).__name__}: {exc})") from None
    if not (len(scores) == len(statuses) == len(details) == n) or not all(isinstance(d, dict) for d in details):
        raise ServeError(f"{where}: a malformed answer: {len(scores)} scores, {len(statuses)} statuses and "
                         f"{len(details)} details for {n} images")
    for k, (score, status) in enumerate(zip(scores, statuses)):
        finite = isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score)
        if status == "ok" and not finite:
            scores[k], statuses[k] = None, "error"
            details[k] = {**details[k], "error": f"the server answered ok with a score that is not a finite number "
                                                 f"({score!r})"}
        elif status not in ("ok", "unparsed", "error"):
            raise ServeError(f"{where}: a malformed answer: unknown status {status!r}")
        elif status != "ok":
            scores[k] = None
    return RemoteScoredItem(entry["prompt"], scores, statuses, details, str(answer.get("item_id", "")),
                            answer.get("mode", "anchor"))


def _chunks(entries: list[dict], max_images: int, max_bytes: int | None = None) -> list[list[dict]]:
    """Consecutive runs of ``entries`` of at most ``max_images`` images and ``max_bytes`` of
    base64 (an item with more goes alone)."""
    out: list[list[dict]] = []
    size = nbytes = 0
    for entry in entries:
        n = len(entry["images"])
        b = sum(len(text) for text in entry["images"])
        if not out or size + n > max_images or (max_bytes is not None and nbytes + b > max_bytes):
            out.append([])
            size = nbytes = 0
        out[-1].append(entry)
        size += n
        nbytes += b
    return out


def _message(response) -> str:
    try:
        return str(response.json()["error"])
    except Exception:  # noqa: BLE001 - not our JSON (a proxy's page): show its start
        return response.text[:200] or response.reason_phrase


# -- Flow-GRPO ---------------------------------------------------------------------------------
def batch_to_pil(images: Any) -> list[Any]:
    """A Flow-GRPO image batch as PIL images: a torch tensor (B, C, H, W) of floats in [0, 1]
    (or uint8), a numpy array (B, H, W, C) uint8 (floats in [0, 1] are scaled), or a list of
    PIL images / arrays / paths / bytes (kept). Tensors convert as Flow-GRPO's own rewards do:
    ``(x * 255).round().clamp(0, 255)`` to uint8, NCHW -> NHWC; torch is never imported here."""
    if type(images).__module__.split(".")[0] == "torch":
        t = images.detach().cpu()
        if t.is_floating_point():
            t = (t.float() * 255).round().clamp(0, 255)
        array = t.byte().numpy()
        if array.ndim != 4 or array.shape[1] not in (1, 3, 4):
            raise UsageError(f"an image tensor must be (B, C, H, W) with C in 1, 3, 4; got shape {tuple(t.shape)}")
        return [_array_to_pil(a) for a in array.transpose(0, 2, 3, 1)]
    if _is_array(images):
        import numpy as np

        array = np.asarray(images)
        if array.ndim != 4:
            raise UsageError(f"an image array batch must be (B, H, W, C); got shape {array.shape}")
        return [_array_to_pil(a) for a in array]
    return [_array_to_pil(x) if _is_array(x) else x for x in images]


def flow_grpo_reward(server: str | Client, *, token: str | None = None, mode: str | None = None,
                     group_by_prompt: bool = True, on_error: str = "raise", **client_options: Any
                     ) -> Callable[..., tuple[list[float], dict[str, Any]]]:
    """A reward function with Flow-GRPO's signature, ``fn(images, prompts, metadata) -> (scores,
    details)``, scoring on a ``prefbench serve`` server (``server``: its URL or a :class:`Client`).

    ``images``: see :func:`batch_to_pil`; ``prompts``: one per image. With ``group_by_prompt``
    (default) the images that share a prompt go to the scorer as one item, so a pairwise scorer
    compares a GRPO group's images with each other; a pointwise scorer gives the same scores
    either way. ``scores`` is a list of floats in the images' order; ``details`` holds
    ``statuses`` and ``errors`` per image. A failed image raises
    :class:`~prefbench.api.ScoringError` unless ``on_error="nan"``.

    In Flow-GRPO's ``flow_grpo/rewards.py``, one line switches the reward::

        score_fns[name] = flow_grpo_reward("http://127.0.0.1:8000")
    """

    _check_choice("on_error", on_error, ON_ERROR)
    client = server if isinstance(server, Client) else Client(server, token=token, **client_options)

    def reward(images, prompts, metadata=None):
        pil = batch_to_pil(images)
        prompts = [str(p) for p in prompts]
        if len(prompts) != len(pil):
            raise UsageError(f"{len(pil)} images but {len(prompts)} prompts: the reward needs one prompt per image")
        groups: dict[Any, list[int]] = {}
        for i, prompt in enumerate(prompts):
            groups.setdefault(prompt if group_by_prompt else i, []).append(i)
        order = list(groups.values())
        too_big = max(order, key=len)
        if group_by_prompt and len(too_big) > client.max_request_images:
            raise UsageError(f"{len(too_big)} images share the prompt {prompts[too_big[0]][:60]!r}, more than one "
                             f"request holds (max_request_images={client.max_request_images}, the server's "
                             "--max-images); raise both, or pass group_by_prompt=False for a pointwise scorer")
        scored = client.score_items([(prompts[ix[0]], [pil[i] for i in ix]) for ix in order], on_error="nan",
                                    mode=mode)
        scores: list[float] = [math.nan] * len(pil)
        statuses: list[str] = ["error"] * len(pil)
        errors: list[str | None] = [None] * len(pil)
        for ix, item in zip(order, scored):
            for k, i in enumerate(ix):
                scores[i] = math.nan if item.scores[k] is None else float(item.scores[k])
                statuses[i], errors[i] = item.statuses[k], item.errors[k]
        if on_error == "raise" and any(s != "ok" for s in statuses):
            bad = [i for i, s in enumerate(statuses) if s != "ok"]
            raise ScoringError(f"image {bad[0]}: {statuses[bad[0]]}: {errors[bad[0]]}"
                               + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
                               + "; pass on_error='nan' to get NaN rewards instead", scored)
        return scores, {"statuses": statuses, "errors": errors}

    reward.client = client  # type: ignore[attr-defined]
    return reward
