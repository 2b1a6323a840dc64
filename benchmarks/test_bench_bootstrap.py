"""10,000-resample cluster bootstrap on the ImageReward test structure (466 prompts, 6,399 pairs).

Run: ``pytest benchmarks/test_bench_bootstrap.py --benchmark-enable``. The baseline, measured
in the same run, is the obvious hand-written version: a Python loop over resamples drawing
prompt indices with numpy. Target for prefbench's version: under 0.5 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prefbench.metrics import cluster_bootstrap, per_prompt

IR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imagereward" / "test.json"


@pytest.fixture(scope="module")
def stats():
    if not IR.is_file():
        pytest.skip(f"needs {IR}")
    items = json.loads(IR.read_text())
    rng = np.random.default_rng(0)
    return per_prompt("imagereward", [it["id"] for it in items], [it["ranking"] for it in items],
                      [rng.random(len(it["ranking"])) for it in items])


def loop_bootstrap(stats, n_resamples=10_000, seed=0):
    rng = np.random.default_rng(seed)
    n = len(stats.num)
    values = np.empty(n_resamples)
    for b in range(n_resamples):
        idx = rng.integers(0, n, n)
        values[b] = stats.num[idx].sum() / stats.den[idx].sum()
    return tuple(np.percentile(values, [2.5, 97.5]))


def test_prefbench_cluster_bootstrap(benchmark, stats):
    low, high = benchmark(cluster_bootstrap, stats, 10_000, 0)
    assert low < stats.accuracy < high


def test_baseline_python_loop(benchmark, stats):
    low, high = benchmark.pedantic(loop_bootstrap, args=(stats,), rounds=3, iterations=1)
    assert low < stats.accuracy < high
