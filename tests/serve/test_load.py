"""A bounded load test: 32 concurrent clients x 20 requests against the ``random`` scorer's
server. Nothing is lost, every score is right, and p50/p95 latency are printed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait

from tests.fixtures.extras import skip_without_extra

skip_without_extra("serve")

from prefbench.api import load_scorer  # noqa: E402
from prefbench.serve import Client  # noqa: E402
from prefbench.serve.metrics import quantile  # noqa: E402
from tests.fixtures.serve import ServerProcess, png  # noqa: E402

CLIENTS, REQUESTS, IMAGES = 32, 20, 2
DEADLINE_S = 240


def test_concurrent_clients_lose_nothing(tmp_path, capsys):
    images = {n: png(n, size=16) for n in range(CLIENTS * REQUESTS * IMAGES)}

    def request(c: int, r: int):
        first = (c * REQUESTS + r) * IMAGES
        return f"client {c} request {r}", [images[first + k] for k in range(IMAGES)]

    with load_scorer("random") as api:
        expected = {(c, r): api.score(*request(c, r)) for c in range(CLIENTS) for r in range(REQUESTS)}
    server = ServerProcess(["--scorer", "random", "--log-level", "warning", "--max-batch-size", "64"],
                           tmp_path / "server.log", {"PREFBENCH_CACHE": str(tmp_path / "cache")})
    got, latencies, failures = {}, [], []
    stop_at = time.monotonic() + DEADLINE_S

    def client(c: int) -> None:
        with Client(server.url, timeout=60, retries=0) as cl:
            for r in range(REQUESTS):
                if time.monotonic() > stop_at:
                    return
                start = time.perf_counter()
                try:
                    got[(c, r)] = cl.score(*request(c, r))
                except Exception as exc:  # noqa: BLE001 - counted and reported below
                    failures.append(f"client {c} request {r}: {exc!r}")
                latencies.append(time.perf_counter() - start)

    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(client, c) for c in range(CLIENTS)]
            done, not_done = wait(futures, timeout=DEADLINE_S + 60)
        elapsed = time.perf_counter() - start
        assert not not_done, "the load test did not finish in time"
        for f in done:
            f.result()
        assert server.alive()
        with Client(server.url) as cl:
            metrics = cl.metrics()
    finally:
        server.stop()
    assert not failures, failures[:5]
    assert len(got) == CLIENTS * REQUESTS, f"{CLIENTS * REQUESTS - len(got)} responses lost"
    assert got == expected
    assert f'prefbench_requests_total{{code="200",endpoint="/v1/score"}} {float(CLIENTS * REQUESTS)}' in metrics
    latencies.sort()
    with capsys.disabled():
        print(f"\nload: {CLIENTS} clients x {REQUESTS} requests x {IMAGES} images in {elapsed:.1f} s "
              f"({CLIENTS * REQUESTS / elapsed:.0f} requests/s); latency p50 {1000 * quantile(latencies, 0.5):.0f} ms, "
              f"p95 {1000 * quantile(latencies, 0.95):.0f} ms, max {1000 * latencies[-1]:.0f} ms")
