"""A caller's deadline stops a long batch between the transformers engine's sub-batches
(prefbench.stopping): the engine asks the thread's stop check before each planned chunk, and
score_isolated lets Stopped through instead of splitting the batch to find a culprit."""

from __future__ import annotations

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
