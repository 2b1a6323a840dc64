"""A caller's deadline stops a long batch (prefbench.stopping): the transformers engine asks the
thread's stop check before each planned chunk and at each generated token, an encoder before each
forward pass, the OpenAI-compatible engine's waiting thread while its requests are in flight (and
cancels them); score_isolated lets Stopped through instead of splitting the batch to find a culprit."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from prefbench.engines.base import GenerationSpec, Job
from prefbench.isolate import score_isolated
from prefbench.stopping import Stopped, stop_when


def _jobs(n):
    from PIL import Image

    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Rate the image."}]}]
    return [Job(msgs, [Image.new("RGB", (32, 32), (10 * i, 0, 0))], f"k{i}", [f"im{i}"]) for i in range(n)]


@pytest.fixture(scope="module")
def engine(tiny_vlm_dir):
    from prefbench.engines.transformers import TransformersEngine

    # a tiny token budget per sub-batch: one job per chunk
    eng = TransformersEngine(model=str(tiny_vlm_dir), max_batch_tokens=1)
    eng.load(("1", "2"))
    yield eng
    eng.close()


def test_the_engine_stops_at_its_next_sub_batch(engine):
    spec = GenerationSpec(("1", "2"), budget=0)
    stats: dict = {}
    assert len(engine.generate(_jobs(3), spec, stats)) == 3 and stats["batches"] == 3  # one chunk per job
    stats = {}
    asked = []

    def check():  # wanted for the first chunk, then the deadline passes
        asked.append(1)
        return len(asked) > 1

    with stop_when(check), pytest.raises(Stopped, match="between an engine's sub-batches"):
        engine.generate(_jobs(6), spec, stats)
    assert stats["batches"] == 1  # five of six sub-batches never ran
    engine.generate(_jobs(1), spec)  # no check set: nothing stops


def test_score_isolated_lets_a_stop_through_instead_of_splitting_the_batch():
    calls = []

    class Stopping:
        def score_batch(self, tasks):
            calls.append(len(tasks))
            raise Stopped("stopped between an engine's sub-batches: the work is no longer wanted")

    class Item:
        item_id = "x"

    with pytest.raises(Stopped):
        score_isolated(Stopping(), [(Item(), [0, 1]), (Item(), [0])])
    assert calls == [2]  # not retried item by item, as a raising batch is


def test_a_long_generation_stops_at_its_next_token(engine):
    spec = GenerationSpec(("1", "2"), budget=48, temperature=1.0, seed=3)
    asked = []

    def check():  # the chunk starts, two tokens are generated, then the deadline passes
        asked.append(1)
        return len(asked) > 3

    start = time.perf_counter()
    with stop_when(check), pytest.raises(Stopped, match="while generating"):
        engine.generate(_jobs(1), spec)
    assert len(asked) == 4  # one check before the chunk, then one per token: not 48 tokens
    [[row]] = engine.generate(_jobs(1), spec)  # no check: the whole reasoning runs
    assert row.generated_tokens > 3, row
    assert time.perf_counter() - start < 120


def test_an_encoder_stops_before_its_next_forward_pass(tiny_encoders):
    from prefbench.data import load_dataset
    from tests.fixtures.encoders import build_scorer

    scorer = build_scorer("clip", tiny_encoders, image_batch=2, workers=1)
    scorer.setup()
    item = load_dataset("demo", None, None).items[0]
    forwards = []
    real = scorer._forward
    scorer._forward = lambda pixels, prompts: forwards.append(len(prompts)) or real(pixels, prompts)
    try:
        with stop_when(lambda: len(forwards) >= 1), pytest.raises(Stopped, match="encoder's forward pass"):
            scorer.score_batch([(item, list(range(item.n_images)))])
        assert forwards == [2]  # one forward pass of 2 images, then stopped (the item has more)
        assert item.n_images > 2
        [res] = scorer.score_batch([(item, list(range(item.n_images)))])  # no check: all are scored
        assert sorted(res) == list(range(item.n_images)) and all(r.status == "ok" for r in res.values())
    finally:
        scorer.close()


def test_requests_in_flight_are_cancelled_when_the_caller_stops():
    """A server that takes 5 s per answer: the OpenAI-compatible engine's pool stops waiting within a
    poll of the deadline and closes the connections, and works normally afterwards."""
    pytest.importorskip("openai")
    from prefbench.engines.openai_client import ServerPool
    from tests.fixtures.json_http import JsonHandler, LocalServer, chat_completion

    slow = threading.Event()

    class Handler(JsonHandler):
        def do_POST(self):  # noqa: N802
            self.read_json()
            if slow.is_set():
                time.sleep(5)
            try:
                self._send(200, chat_completion("ok", None, 1, model="m", prompt_tokens=1))
            except OSError:  # the client closed the connection
                pass

    async def in_flight():
        return sum(1 for t in asyncio.all_tasks() if t is not asyncio.current_task())

    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with LocalServer(Handler) as server:
        pool = ServerPool([server.url], "k", max_retries=0, timeout=30)
        try:
            slow.set()
            start = time.monotonic()
            with stop_when(lambda: time.monotonic() > start + 0.5), pytest.raises(Stopped, match="in flight"):
                pool.chat_many([payload] * 3)
            assert time.monotonic() - start < 2.0  # not the server's 5 s
            # the three requests' tasks were cancelled on the pool's loop, not left running
            deadline = time.monotonic() + 2
            while asyncio.run_coroutine_threadsafe(in_flight(), pool._loop).result() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert asyncio.run_coroutine_threadsafe(in_flight(), pool._loop).result() == 0
            slow.clear()
            [reply] = pool.chat_many([payload])  # the pool is usable after the cancel
            assert reply.error is None, reply
        finally:
            pool.close()
