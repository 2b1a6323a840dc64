"""Issue 31: the server's --timeout stops the work it bounds, between the scorer's batches. On a
real ``prefbench serve`` subprocess with the slow example plugin: a request of 12 items (6 s of
scoring) that times out at 2 s stops being scored at the next scorer batch, so a request sent
after it is answered instead of timing out behind it. In-process: a round-robin item's pairs stop
at the stop check."""

from __future__ import annotations

import json
import os
import re
import threading
import time

import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("serve")

from tests.fixtures.serve import ServerProcess, b64, png  # noqa: E402


def test_a_timed_out_request_stops_being_scored_and_the_next_is_answered(tmp_path, with_plugin):
    import httpx

    path = os.pathsep.join(filter(None, [str(with_plugin), os.environ.get("PYTHONPATH")]))
    server = ServerProcess(["--scorer", "sleepy", "-S", "delay=0.5", "--timeout", "2", "--max-batch-size", "64",
                            "--max-wait-ms", "0", "--log-level", "warning"], tmp_path / "server.log",
                           env_extra={"PYTHONPATH": path})
    try:
        big = {"items": [{"prompt": f"p{n}", "images": [b64(png(n))]} for n in range(12)]}  # 12 x 0.5 s
        answers: dict[str, tuple[int, float]] = {}

        def send(name, body, sent_at):
            start = time.monotonic()
            answer = httpx.post(server.url + "/v1/score", content=json.dumps(body), timeout=30)
            answers[name] = (answer.status_code, time.monotonic() - start, sent_at)

        t0 = time.monotonic()
        first = threading.Thread(target=send, args=("big", big, 0.0))
        first.start()
        time.sleep(2.1)  # the big request has had its 504 (or is about to)
        send("next", {"prompt": "q", "images": [b64(png(99))]}, time.monotonic() - t0)
        first.join(timeout=30)
        assert answers["big"][0] == 504 and answers["big"][1] < 3, answers
        # before: the big request's 6 s of scoring ran on, and this one timed out behind it
        assert answers["next"][0] == 200 and answers["next"][1] < 1.8, answers
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        seconds = float(re.search(r"^prefbench_batch_seconds_sum (\S+)", metrics, re.M).group(1))
        assert seconds < 4.0, seconds  # the big batch stopped at its next scorer batch after 2 s (+ 0.5 s)
        dropped = re.search(r'^prefbench_requests_dropped_total\{reason="timeout"\} (\S+)', metrics, re.M)
        assert dropped and float(dropped.group(1)) == 1.0
    finally:
        server.stop()


def test_a_round_robin_item_stops_between_its_scorer_batches(with_plugin):
    import prefbench
    from prefbench.isolate import Stopped, stop_when

    images = [png(n, 8) for n in range(10)]  # 45 pairs, one scorer batch each
    with prefbench.load_scorer("coin_pairwise", mode="round_robin", batch_size=1) as scorer:
        scorer.setup()
        inner = scorer._scorer
        calls = []
        original = inner.score_batch

        def counted(tasks):
            calls.append(len(tasks))
            return original(tasks)

        inner.score_batch = counted
        full = scorer.score("p", images)
        assert len(calls) == 45 and len(full) == 10
        calls.clear()
        with stop_when(lambda: len(calls) >= 5), pytest.raises(Stopped):
            scorer.score("p", images)
        assert len(calls) == 5
        calls.clear()
        assert scorer.score("p", images) == full  # the check is gone with its block
