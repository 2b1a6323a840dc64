"""The reward server's Prometheus metrics (``GET /metrics``), on a registry of its own.

prometheus_client's ``Summary`` has no quantiles, so request latency is exported as a summary
by a small collector over a sliding window of the last requests (p50, p95, p99, plus the
all-time ``_count`` and ``_sum``).
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric

__all__ = ["CONTENT_TYPE_LATEST", "LatencyWindow", "ServerMetrics", "quantile"]

QUANTILES = (0.5, 0.95, 0.99)
#: the endpoints counted by name; any other path is counted as "other" (bounded label values)
ENDPOINTS = ("/v1/score", "/v1/info", "/health", "/metrics")


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of sorted ``values`` by linear interpolation (numpy's default); NaN if empty."""
    if not values:
        return math.nan
    pos = q * (len(values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


class LatencyWindow:
    """A summary with quantiles over the last ``size`` observations."""

    def __init__(self, name: str, documentation: str, size: int = 4096):
        self.name, self.documentation = name, documentation
        self._values: collections.deque[float] = collections.deque(maxlen=size)
        self._count, self._sum = 0, 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._values.append(seconds)
            self._count += 1
            self._sum += seconds

    def quantiles(self) -> dict[float, float]:
        with self._lock:
            values = sorted(self._values)
        return {q: quantile(values, q) for q in QUANTILES}

    def describe(self):
        return [Metric(self.name, self.documentation, "summary")]

    def collect(self):
        metric = Metric(self.name, self.documentation, "summary")
        for q, value in self.quantiles().items():
            metric.add_sample(self.name, {"quantile": str(q)}, value)
        with self._lock:
            metric.add_sample(self.name + "_count", {}, self._count)
            metric.add_sample(self.name + "_sum", {}, self._sum)
        yield metric


class ServerMetrics:
    """Every metric of one app; ``queue_depth`` and ``queued_images`` are read when scraped."""

    def __init__(self, queue_depth: Callable[[], float], queued_images: Callable[[], float]):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("prefbench_requests", "HTTP requests answered, by endpoint and status code",
                                ["endpoint", "code"], registry=r)
        self.images = Counter("prefbench_images", "images scored, by per-image status (ok, error, unparsed)",
                              ["status"], registry=r)
        self.dropped = Counter("prefbench_requests_dropped",
                               "score requests given up before an answer: the client disconnected or the request "
                               "timed out", ["reason"], registry=r)
        self.latency = LatencyWindow("prefbench_request_latency_seconds",
                                     "POST /v1/score latency of answered requests (200), over the last 4096")
        r.register(self.latency)
        self.batch_images = Histogram("prefbench_batch_images", "images per scoring call (micro-batch size)",
                                      buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=r)
        self.batch_requests = Histogram("prefbench_batch_requests", "requests per scoring call",
                                        buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.batch_seconds = Histogram("prefbench_batch_seconds", "seconds per scoring call",
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                                       registry=r)
        g = Gauge("prefbench_queue_depth", "score requests waiting for a batch", registry=r)
        g.set_function(queue_depth)
        g = Gauge("prefbench_queued_images", "images of the requests waiting for a batch", registry=r)
        g.set_function(queued_images)

    def on_batch(self, n_requests: int, n_images: int, seconds: float) -> None:
        self.batch_images.observe(n_images)
        self.batch_requests.observe(n_requests)
        self.batch_seconds.observe(seconds)

    def count(self, path: str, code: int) -> None:
        self.requests.labels(path if path in ENDPOINTS else "other", str(code)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
