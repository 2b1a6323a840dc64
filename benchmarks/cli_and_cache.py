"""CLI start-up and cached-rerun timings, each as a ratio to a baseline measured in the same run.

    python benchmarks/cli_and_cache.py

- ``prefbench --help`` / ``prefbench list`` wall time vs ``python -c pass`` (interpreter floor);
  target: under 1 s each.
- A cached rerun of a finished ``random`` run on the demo split vs the first run (in-process,
  so interpreter start-up does not hide the difference); target: at least 10x faster.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time


def wall(cmd: list[str], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    floor = wall([sys.executable, "-c", "pass"])
    print(f"python -c pass            {floor:.3f} s (baseline)")
    for args in (["--help"], ["list"]):
        t = wall([sys.executable, "-m", "prefbench", *args])
        print(f"prefbench {' '.join(args):<15} {t:.3f} s  ({t / floor:.1f}x the interpreter floor)")

    from prefbench.data import load_dataset
    from prefbench.runner import RunConfig, run

    load_dataset("demo")  # generate the demo world outside the timing
    firsts, cached = [], []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = RunConfig(scorer="random", out=f"{tmp}/run", progress=False)
            t = time.perf_counter()
            run(cfg, log=lambda m: None)
            firsts.append(time.perf_counter() - t)
            t = time.perf_counter()
            rec = run(cfg, log=lambda m: None)
            cached.append(time.perf_counter() - t)
            assert rec.get("cached")
    f, c = statistics.median(firsts), statistics.median(cached)
    print(f"first run (random, demo)  {f:.3f} s (baseline)")
    print(f"cached rerun              {c:.3f} s  ({f / c:.0f}x faster)")


if __name__ == "__main__":
    main()
