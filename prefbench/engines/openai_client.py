"""Async client for OpenAI-compatible chat servers (vLLM, SGLang, OpenAI): bounded
concurrency, retries with exponential backoff and jitter on 429 / 5xx / timeouts / refused
connections, a per-request timeout, several servers in round robin, and summed token usage.

A request that still fails after its last attempt does not raise: it comes back as a
:class:`Reply` with ``error`` set, so the scorer can give that one image an ``error`` status
(``retryable`` when the failure was transient, so the next ``prefbench run`` retries it).

The API key is read from an environment variable when the pool starts and is never stored in
options, run records or messages: every error text passes through :meth:`ServerPool.redact`.

``openai`` and ``tenacity`` are imported here; this module is only imported by the ``openai``
engine's ``load()`` (:mod:`prefbench.engines.openai`; ``pip install 'prefbench[openai]'``).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

#: HTTP statuses worth another attempt (OpenAI's own client retries the same set).
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
#: the key a local server gets when no key is configured (vLLM ignores it unless --api-key)
NO_KEY = "EMPTY"


@dataclass
class Reply:
    """The outcome of one request: the response as a dict, or an error after the last attempt."""

    data: dict | None
    error: str | None = None
    retryable: bool = False
    attempts: int = 1
    server: str = ""


@dataclass
class Usage:
    requests: int = 0
    failed_requests: int = 0
    attempts: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "by_status"}
        out["total_tokens"] = self.prompt_tokens + self.completion_tokens
        if self.by_status:
            out["failed_attempts_by_status"] = dict(sorted(self.by_status.items()))
        return out


def read_api_key(env_var: str | None, explicit: bool) -> str:
    """The key from ``env_var``. A missing default variable means a keyless local server;
    a variable the user named explicitly must be set."""
    name = env_var or "OPENAI_API_KEY"
    value = os.environ.get(name)
    if value:
        return value
    if explicit:
        raise ValueError(f"--api-key-env {name}: the environment variable {name} is not set")
    return NO_KEY


#: the longest ``Retry-After`` (seconds) a 429 / 503 answer can make a request wait
RETRY_AFTER_MAX = 60.0


class _Retryable(Exception):
    def __init__(self, message: str, status: str, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def _retry_after(exc) -> float | None:
    """Seconds from a ``Retry-After: <seconds>`` header (an HTTP date is ignored), capped."""
    try:
        value = float(exc.response.headers.get("retry-after"))
    except (AttributeError, TypeError, ValueError):
        return None
    return min(max(value, 0.0), RETRY_AFTER_MAX) if math.isfinite(value) else None


class ServerPool:
    """One ``AsyncOpenAI`` client per base URL on a private event loop thread.

    ``chat_many(payloads)`` sends chat-completion requests concurrently (at most
    ``max_concurrency`` in flight) and returns a :class:`Reply` per payload, in order.
    """

    def __init__(self, base_urls: Sequence[str], api_key: str, *, max_concurrency: int = 8,
                 timeout: float = 120.0, max_retries: int = 4, backoff_initial: float = 0.5,
                 backoff_max: float = 8.0):
        if not base_urls:
            raise ValueError("the OpenAI backend needs at least one --base-url")
        if max_concurrency < 1 or timeout <= 0 or max_retries < 0:
            raise ValueError("max_concurrency >= 1, request_timeout > 0 and max_retries >= 0 are required")
        self.base_urls = [u.rstrip("/") for u in base_urls]
        self._key = api_key
        self.max_concurrency = int(max_concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_initial, self.backoff_max = float(backoff_initial), float(backoff_max)
        self.usage = Usage()
        self._rr = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="prefbench-openai", daemon=True)
        self._thread.start()
        self._clients = self._call(self._make_clients())
        self._sem = None

    async def _make_clients(self):
        from openai import AsyncOpenAI

        # retries are ours (tenacity), so that every attempt is counted and can change server
        return [AsyncOpenAI(base_url=u, api_key=self._key, max_retries=0, timeout=self.timeout)
                for u in self.base_urls]

    def _call(self, coro: Awaitable):
        """Run ``coro`` on the pool's loop and wait for it. A caller with a deadline
        (:func:`prefbench.stopping.stop_when`, e.g. the reward server) is asked every ``POLL_S``; once
        it says stop, the requests in flight are cancelled (their connections closed, which a vLLM
        server takes as an abort) and :class:`~prefbench.stopping.Stopped` is raised."""
        import concurrent.futures

        from prefbench.stopping import POLL_S, Stopped, armed, check_stop

        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        if not armed():
            return future.result()
        while True:
            try:
                return future.result(timeout=POLL_S)
            except concurrent.futures.TimeoutError:
                try:
                    check_stop("while the engine's requests were in flight")
                except Stopped:
                    future.cancel()
                    raise

    def redact(self, text: str) -> str:
        """``text`` with the API key and URL credentials blanked out (servers may echo request
        headers; a --base-url may carry user:key@)."""
        from prefbench.provenance import redact_url

        if self._key and self._key != NO_KEY:
            text = text.replace(self._key, "***")
        return redact_url(text)

    # -- requests ---------------------------------------------------------------------------
    def chat_many(self, payloads: Sequence[dict], servers: Sequence[int] | None = None) -> list[Reply]:
        """Send every payload; ``servers[i]`` picks the first server for payload i (default:
        round robin). Blocks until all are answered or have failed."""
        return self._call(self._gather(list(payloads), servers))

    def run(self, fn: Callable[[ServerPool], Awaitable]):
        """Run an async function ``fn(pool)`` on the pool's loop (chains of dependent requests)."""
        return self._call(fn(self))

    async def _gather(self, payloads, servers):
        return await asyncio.gather(*[self.chat(p, None if servers is None else servers[i])
                                      for i, p in enumerate(payloads)])

    def next_server(self) -> int:
        return next(self._rr) % len(self._clients)

    async def chat(self, payload: dict, server: int | None = None) -> Reply:
        """One chat completion with retries; never raises for server or network failures."""
        from tenacity import (
            AsyncRetrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_random_exponential,
        )

        if self._sem is None:
            self._sem = asyncio.Semaphore(self.max_concurrency)
        start = self.next_server() if server is None else server % len(self._clients)
        attempt = 0
        # full jitter: a random wait in [0, min(max, initial * 2^n)] spreads retries of many requests;
        # a server that says how long to wait (Retry-After on 429 / 503) is believed, up to a cap
        jitter = wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max)

        def wait(state) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            after = getattr(exc, "retry_after", None)
            return after if after is not None else jitter(state)

        try:
            async for trial in AsyncRetrying(
                stop=stop_after_attempt(self.max_retries + 1),
                wait=wait,
                retry=retry_if_exception_type(_Retryable), reraise=True,
            ):
                with trial:
                    idx = (start + attempt) % len(self._clients)  # a retry moves to the next server
                    attempt += 1
                    self.usage.attempts += 1
                    try:
                        async with self._sem:
                            data = await self._send(idx, payload)
                    except _Retryable as exc:
                        self.usage.by_status[exc.status] = self.usage.by_status.get(exc.status, 0) + 1
                        raise
            self._count(data)
            return Reply(data, attempts=attempt, server=self.redact(self.base_urls[idx]))
        except _Retryable as exc:
            error, retryable = f"{exc} (gave up after {attempt} attempts)", True
        except Exception as exc:  # a 4xx or a malformed response: no retry helps
            error, retryable = f"{type(exc).__name__}: {exc}", False
        finally:
            self.usage.retries += max(0, attempt - 1)
        self.usage.requests += 1
        self.usage.failed_requests += 1
        return Reply(None, self.redact(error), retryable, attempt,
                     self.redact(self.base_urls[(start + attempt - 1) % len(self._clients)]))

    async def _send(self, idx: int, payload: dict) -> dict:
        import openai

        body = dict(payload)
        extra = body.pop("extra_body", None)
        url = self.redact(self.base_urls[idx])
        try:
            # request_timeout is a deadline for the whole attempt, not per read: a server that drips
            # its answer byte by byte is cut off at the deadline like one that never answers
            resp = await asyncio.wait_for(
                self._clients[idx].chat.completions.create(**body, extra_body=extra, timeout=self.timeout),
                timeout=self.timeout)
        except (openai.APITimeoutError, asyncio.TimeoutError):
            raise _Retryable(f"request to {url} timed out: no complete answer within {self.timeout:g} s", "timeout") from None
        except openai.APIConnectionError as exc:
            raise _Retryable(f"cannot reach {url}: {self.redact(str(exc.__cause__ or exc))}", "connection") from None
        except openai.APIStatusError as exc:
            if exc.status_code in RETRY_STATUSES:
                raise _Retryable(f"{url} answered HTTP {exc.status_code}: {self.redact(str(exc.message))[:300]}",
                                 str(exc.status_code), _retry_after(exc)) from None
            raise RuntimeError(f"{url} answered HTTP {exc.status_code}: {self.redact(str(exc.message))[:500]}") from None
        except (openai.APIResponseValidationError, ValueError) as exc:  # a 200 whose body is cut or not JSON
            raise _Retryable(f"{url} sent a malformed answer ({type(exc).__name__}); retrying", "malformed") from None
        data = resp.model_dump()
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict) \
                or not isinstance(choices[0].get("message"), dict):
            raise _Retryable(f"{url} answered 200 without a choice (choices: {str(choices)[:80]}); retrying",
                             "malformed")
        return data

    def _count(self, data: dict) -> None:
        self.usage.requests += 1
        usage = data.get("usage") or {}
        self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        self.usage.cached_prompt_tokens += int(details.get("cached_tokens") or 0)

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        if not self._loop.is_running():
            return

        async def _close():
            for c in self._clients:
                await c.close()

        try:
            self._call(_close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()
