"""Reward-server throughput with micro-batching on vs off, as a ratio measured in one run.

    python benchmarks/serve_batching.py                       # bundled CLIP demo scorer, CPU
    python benchmarks/serve_batching.py --scorer clip --model M --clients 32 --requests 20 \\
        --out benchmarks/results/serve_batching_<card>.json

Two ``prefbench serve`` subprocesses on 127.0.0.1 load the same scorer: one micro-batches
(``--max-batch-size 32 --max-wait-ms 10`` by default), the other scores one request at a time
(``--max-batch-size 1 --max-wait-ms 0``). Each round sends the same bounded load to one of them:
``--clients`` concurrent clients, each sending ``--requests`` requests of ``--images`` distinct
images, and measures images per second and request latency. Rounds alternate between the two
servers (A B, B A, ...) after one warm-up round each, so drift in the machine's load hits both;
the ratio is median(batched images/s) / median(one-at-a-time images/s). Results:
benchmarks/serve_batching.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READY = re.compile(r"serving \S+ \(.*?\) on (http://127\.0\.0\.1:\d+)")


def start(args, extra: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "prefbench", "serve", "--scorer", args.scorer, "--host", "127.0.0.1", "--port", "0",
           "--log-level", "warning", *extra]
    if args.model:
        cmd += ["--model", args.model]
    fh = log.open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()}")
        match = READY.search(log.read_text(errors="replace"))
        if match:
            return proc, match.group(1)
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start: {log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def images(n: int, size: int, offset: int) -> list[bytes]:
    import numpy as np
    from PIL import Image

    out = []
    for k in range(n):
        rng = np.random.default_rng(offset + k)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def one_round(url: str, args, pool: list[bytes]) -> dict:
    from prefbench.serve import Client
    from prefbench.serve.metrics import quantile

    latencies: list[float] = []
    lost = 0

    def client(c: int) -> None:
        nonlocal lost
        with Client(url, timeout=120, retries=0) as cl:
            for r in range(args.requests):
                first = ((c * args.requests + r) * args.images) % len(pool)
                batch = [pool[(first + k) % len(pool)] for k in range(args.images)]
                start = time.perf_counter()
                try:
                    scores = cl.score(f"prompt {c}-{r}", batch)
                    lost += len(scores) != len(batch)
                except Exception:  # noqa: BLE001 - counted: a benchmark that loses requests says so
                    lost += 1
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as ex:
        list(ex.map(client, range(args.clients)))
    wall = time.perf_counter() - start
    latencies.sort()
    n_images = args.clients * args.requests * args.images
    return {"images_per_s": n_images / wall, "wall_s": wall, "p50_ms": 1000 * quantile(latencies, 0.5),
            "p95_ms": 1000 * quantile(latencies, 0.95), "lost": lost}


def batch_stats(url: str) -> dict:
    import httpx

    text = httpx.get(url + "/metrics", timeout=30).text
    values = {}
    for line in text.splitlines():
        if line.startswith(("prefbench_batch_images_sum", "prefbench_batch_images_count")):
            name, value = line.split()
            values[name] = float(value)
    count = values.get("prefbench_batch_images_count", 0)
    return {"scoring_calls": int(count),
            "mean_batch_images": values.get("prefbench_batch_images_sum", 0) / count if count else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scorer", default="clip")
    p.add_argument("--model")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=12, help="requests per client per round")
    p.add_argument("--images", type=int, default=1, help="images per request")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="measured rounds per server")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=10.0)
    p.add_argument("--out", help="write the numbers as JSON here")
    args = p.parse_args()

    pool = images(args.clients * args.requests * args.images, args.image_size, offset=0)
    configs = {"batched": ["--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.max_wait_ms)],
               "one_at_a_time": ["--max-batch-size", "1", "--max-wait-ms", "0"]}
    rounds: dict[str, list[dict]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {}
        try:
            for name, extra in configs.items():
                servers[name] = start(args, extra, Path(tmp) / f"{name}.log")
            for _, url in servers.values():  # warm-up, not measured
                one_round(url, argparse.Namespace(**{**vars(args), "requests": 2}), pool)
            order = list(configs)
            for r in range(args.repeats):
                for name in (order if r % 2 == 0 else order[::-1]):
                    res = one_round(servers[name][1], args, pool)
                    rounds[name].append(res)
                    print(f"round {r + 1} {name:>14}: {res['images_per_s']:7.1f} images/s  p50 {res['p50_ms']:6.0f} ms"
                          f"  p95 {res['p95_ms']:6.0f} ms  lost {res['lost']}", flush=True)
            batching = {name: batch_stats(url) for name, (_, url) in servers.items()}
        finally:
            for proc, _ in servers.values():
                stop(proc)
    median = {name: statistics.median(r["images_per_s"] for r in rs) for name, rs in rounds.items()}
    ratio = median["batched"] / median["one_at_a_time"]
    print(f"\nmicro-batching on / off: {median['batched']:.1f} / {median['one_at_a_time']:.1f} images/s "
          f"= {ratio:.2f}x  ({args.clients} clients x {args.requests} requests x {args.images} images, "
          f"{args.repeats} interleaved rounds each; mean batch {batching['batched']['mean_batch_images']:.1f} images)")
    if args.out:
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        Path(args.out).write_text(json.dumps({
            "args": vars(args), "rounds": rounds, "median_images_per_s": median, "ratio": ratio,
            "batching": batching, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                             "python": platform.python_version(), "loadavg_after": load},
        }, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0 if all(r["lost"] == 0 for rs in rounds.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
