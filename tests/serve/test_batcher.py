"""The app's micro-batcher in-process, with a slow fake scorer: batches fill up to the image
limit, a timed-out request gets 504 and is never scored, a full queue gets 503, and an item the
scorer fails on as a whole fails its own request only."""

from __future__ import annotations

import asyncio
import threading
import time

from tests.fixtures.extras import skip_without_extra

skip_without_extra("serve")

import httpx  # noqa: E402

from prefbench.api import ScoredItem  # noqa: E402
from prefbench.scorers.base import ImageResult  # noqa: E402
from prefbench.serve import create_app  # noqa: E402
from tests.fixtures.serve import b64, png  # noqa: E402


class FakeScorer:
    """Scores image k of a prompt as len(prompt) + k, after ``delay`` seconds per call."""

    name, mode, pairwise = "fake", "anchor", False
    gives_sigma = False  # the server asks whether a scorer can return sigma ("return": ["sigma"])

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.calls: list[list[str]] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()
        self.busy = False

    def info(self):
        return {"scorer": self.name}

    def score_items(self, items, on_error, mode):
        assert on_error == "nan"
        with self.lock:  # never two scoring calls at once
            assert not self.busy
            self.busy = True
        try:
            self.threads.add(threading.current_thread().name)
            prompts = [i["prompt"] for i in items]
            self.calls.append(prompts)
            if "boom" in prompts:
                raise RuntimeError("the scorer cannot take this item")
            time.sleep(self.delay)
            return [ScoredItem(i["prompt"], [ImageResult(float(len(i["prompt"]) + k)) for k in range(len(i["images"]))])
                    for i in items]
        finally:
            self.busy = False


def _run(app, coro_fn):
    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app", timeout=30) as client:
            try:
                return await coro_fn(client)
            finally:
                await app.state.batcher.aclose()

    return asyncio.run(main())


def _body(prompt: str, n: int = 1) -> dict:
    return {"prompt": prompt, "images": [b64(png(k, size=8)) for k in range(n)]}


def test_concurrent_requests_share_batches_up_to_the_image_limit():
    scorer = FakeScorer(delay=0.05)
    app = create_app(scorer, max_batch_images=4, max_wait_ms=50)
    prompts = [f"p{'x' * n}" for n in range(10)]

    async def go(client):
        return await asyncio.gather(*(client.post("/v1/score", json=_body(p, 2)) for p in prompts))

    answers = _run(app, go)
    for p, r in zip(prompts, answers):
        assert r.status_code == 200 and r.json()["scores"] == [len(p), len(p) + 1]
    assert sorted(sum(scorer.calls, [])) == sorted(prompts)
    assert all(len(call) <= 2 for call in scorer.calls) and len(scorer.calls) <= 6  # 2 images each, 4 per batch
    assert len(scorer.threads) == 1  # one scoring thread


def test_a_timed_out_request_gets_504_and_a_queued_one_is_never_scored():
    scorer = FakeScorer(delay=1.0)
    app = create_app(scorer, max_batch_images=1, max_wait_ms=0, request_timeout_s=0.3)

    async def go(client):
        first = asyncio.ensure_future(client.post("/v1/score", json=_body("first")))
        await asyncio.sleep(0.05)
        second = await client.post("/v1/score", json=_body("second"))
        first = await first
        await asyncio.sleep(1.2)  # the first batch ends; the dropped second must not run
        after = await client.post("/v1/score", json=_body("after"))
        return first, second, after

    first, second, after = _run(app, go)
    assert first.status_code == 504 and "timeout" in first.json()["error"]
    assert second.status_code == 504
    assert after.status_code == 504  # still slower than the timeout, but scored: the server is alive
    assert scorer.calls[:2] == [["first"], ["after"]]
    metrics = app.state.metrics.render().decode()
    assert 'prefbench_requests_dropped_total{reason="timeout"} 3.0' in metrics


def test_a_full_queue_gets_503():
    scorer = FakeScorer(delay=0.5)
    app = create_app(scorer, max_batch_images=1, max_wait_ms=0, max_queue=1)

    async def go(client):
        running = asyncio.ensure_future(client.post("/v1/score", json=_body("a")))
        await asyncio.sleep(0.1)
        waiting = asyncio.ensure_future(client.post("/v1/score", json=_body("b")))
        await asyncio.sleep(0.1)
        refused = await client.post("/v1/score", json=_body("c"))
        return refused, await running, await waiting

    refused, running, waiting = _run(app, go)
    assert refused.status_code == 503 and "busy" in refused.json()["error"]
    assert refused.headers["retry-after"] == "1"
    assert running.status_code == waiting.status_code == 200


def test_an_item_the_scorer_fails_on_fails_only_its_request():
    scorer = FakeScorer(delay=0.0)
    app = create_app(scorer, max_batch_images=8, max_wait_ms=100)

    async def go(client):
        return await asyncio.gather(client.post("/v1/score", json=_body("fine")),
                                    client.post("/v1/score", json={"items": [_body("boom"), _body("ok")]}),
                                    client.post("/v1/score", json=_body("also fine")))

    fine, boom, also = _run(app, go)
    assert boom.status_code == 500 and "cannot take this item" in boom.json()["error"]
    assert fine.json()["scores"] == [4.0] and also.json()["scores"] == [9.0]


async def _leaving_client(app, body: dict, leave_after: float) -> list[dict]:
    """One ASGI request whose client hangs up ``leave_after`` seconds after sending its body."""
    import json

    data = json.dumps(body).encode()
    loop = asyncio.get_running_loop()
    sent: list[dict] = []
    state: dict = {}

    async def receive():
        if "t0" not in state:
            state["t0"] = loop.time()
            return {"type": "http.request", "body": data, "more_body": False}
        wait = state["t0"] + leave_after - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/score", "raw_path": b"/v1/score", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
             "client": ("127.0.0.1", 9), "server": ("app", 80)}
    await app(scope, receive, send)
    return sent


def test_a_client_that_leaves_is_dropped_and_harms_no_one():
    """C leaves while its batch runs (its results are discarded); B leaves while queued (it is
    never scored); A, queued between them, gets its scores."""
    scorer = FakeScorer(delay=0.5)
    app = create_app(scorer, max_batch_images=1, max_wait_ms=0)

    async def go(client):
        c = asyncio.ensure_future(_leaving_client(app, _body("C"), leave_after=0.2))
        await asyncio.sleep(0.05)
        a = asyncio.ensure_future(client.post("/v1/score", json=_body("AA")))
        await asyncio.sleep(0.05)
        b = asyncio.ensure_future(_leaving_client(app, _body("B"), leave_after=0.1))
        return await a, await b, await c

    a, b, c = _run(app, go)
    assert a.status_code == 200 and a.json()["scores"] == [2.0]
    assert b[0]["status"] == 499 and c[0]["status"] == 499
    assert scorer.calls == [["C"], ["AA"]]  # B was dropped before its batch
    metrics = app.state.metrics.render().decode()
    assert 'prefbench_requests_dropped_total{reason="disconnected"} 2.0' in metrics
