"""Wall time and throughput of ``prefbench run --executor ray`` with 1 and 2 workers, as ratios.

    unshare -n python benchmarks/ray_scaling.py --out benchmarks/results/ray_scaling.json

Inside a network namespace of its own (only the loopback: Ray binds 127.0.0.1 and nothing leaves
the machine) it starts one Ray head, then runs the same scoring job (the demo rating model on
``--limit`` demo items, batches of ``--batch-size``) with ``--workers 1`` and ``--workers 2``,
alternating the order each round, each in a fresh results folder, and reads each run's
``throughput.wall_s`` (from the first batch sent to the last written: actor start-up and model
loading included, cluster start-up not). On a 2-core machine two workers can at best halve the
time; the point is that the run scales, not the absolute numbers. Run it on an otherwise idle
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 6391


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


def one(workers: int, args, root: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=root))
    proc = sh(sys.executable, "-m", "prefbench", "run", "--scorer", "expected_rating", "--dataset", "demo",
              "--limit", args.limit, "-S", f"max_new_tokens={args.think}", "--batch-size", args.batch_size,
              "--executor", "ray", "--ray-address", f"127.0.0.1:{PORT}", "--workers", workers,
              "--results", out, "--no-progress", timeout=1800)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    rec = json.loads(next(out.glob("*/*/run.json")).read_text())
    return float(rec["throughput"]["wall_s"]), int(rec["counts"]["ok"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--think", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out")
    args = ap.parse_args()
    os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    sh("ip", "link", "set", "lo", "up")
    temp = tempfile.mkdtemp(prefix="pbray-", dir="/tmp")  # a session folder of its own; a head only we stop
    head = subprocess.Popen(["ray", "start", "--head", "--block", f"--port={PORT}", f"--num-cpus={os.cpu_count()}",
                             "--include-dashboard=false", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
                             f"--temp-dir={temp}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        if sh("ray", "status", f"--address=127.0.0.1:{PORT}", timeout=60).returncode == 0:
            break
        time.sleep(1)
    times: dict[int, list[float]] = {1: [], 2: []}
    images = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for w in ((1, 2) if r % 2 == 0 else (2, 1)):
                    t, images = one(w, args, Path(tmp))
                    times[w].append(t)
                    print(f"round {r}: {w} worker(s): {t:.2f} s for {images} images", flush=True)
    finally:
        head.terminate()
        head.wait(timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
    best = {w: min(v) for w, v in times.items()}
    report = {"cpus": os.cpu_count(), "images": images, "limit": args.limit, "think": args.think,
              "batch_size": args.batch_size, "wall_s": times,
              "images_per_s_best": {w: round(images / best[w], 3) for w in best},
              "speedup_2_over_1_best": round(best[1] / best[2], 3),
              "speedup_2_over_1_median": round(statistics.median(times[1]) / statistics.median(times[2]), 3)}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
