"""Speed of `prefbench report` at ImageReward test size (466 prompts), against its baseline: one
paired bootstrap (what `prefbench compare` runs) times the number of run pairs.

    python benchmarks/report_speed.py

Run folders are hand-made run.json files (the report reads nothing else with --items 0).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from report_helpers import bernoulli_prompts, hand_run  # noqa: E402

from prefbench.metrics import PerPrompt, paired_bootstrap  # noqa: E402
from prefbench.report import write_report  # noqa: E402


def _median(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="report-bench-"))
    a = PerPrompt("imagereward", [f"p{i}" for i in range(466)], *bernoulli_prompts(0.6, n=466, pairs=14, seed=1), 6399)
    b = PerPrompt("imagereward", a.item_ids, *bernoulli_prompts(0.62, n=466, pairs=14, seed=2), 6399)
    one_pair = _median(lambda: paired_bootstrap(a, b, n_resamples=10_000))
    print("| runs on one split | pairs | report (median of 3) | baseline: pairs x one paired bootstrap | ratio |")
    print("|---|---|---|---|---|")
    for n in (2, 4, 8):
        root = tmp / f"n{n}"
        for i in range(n):
            hand_run(root, f"run{i}", f"s{i}", *bernoulli_prompts(0.6 + 0.01 * i, n=466, pairs=14, seed=i),
                     resamples=100)
        pairs = n * (n - 1) // 2
        t = _median(lambda root=root: write_report(root, root / "out", n_items=0))
        base = pairs * one_pair
        print(f"| {n} | {pairs} | {t:.2f} s | {base:.2f} s | {t / base:.2f} |")


if __name__ == "__main__":
    main()
