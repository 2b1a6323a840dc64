"""What the reward server's largest allowed request costs, and whether --timeout stops it.

    python benchmarks/serve_budgets.py                                  # the cases below, CPU
    python benchmarks/serve_budgets.py --case anchor64 --out benchmarks/results/serve_budgets_cpu.json

Each case starts one ``prefbench serve`` subprocess on 127.0.0.1 (bundled demo checkpoints, the
default budgets and ``--timeout`` unless the case says otherwise) and sends one request that fills a
budget: progressive JPEGs of ``size`` x ``size`` noise, each with 64 scans (the most a JPEG may have
before its decode budget refuses it), as many images as the pixel budget (``--max-request-pixels``,
64 Mi pixels) allows. While that request runs, nothing else is sent: the machine is not shared with
another measurement. When it is answered (200, or 504 at the deadline), one small request (two
64x64 images) is sent at once: the time until it is answered is how long the scoring thread went on
with work nobody waited for. Reported per case: the big request's status and time, when the
scoring thread was free again, and the server's peak resident memory (``VmHWM``) against its
memory after loading. Results: the table in docs/serve.md ("What the largest allowed request costs").
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from serve_batching import start, stop  # noqa: E402  (the same server start and stop)

from tests.fixtures.hostile import repeat_smallest_scan  # noqa: E402  (the scan bomb's construction)

#: name -> (scorer, mode, images, side, extra serve flags)
CASES = {
    "clip64": ("clip", None, 64, 1024, []),
    "clip4": ("clip", None, 4, 4096, []),
    "anchor64": ("anchor_pairwise", "anchor", 64, 1024, []),
    "round_robin32": ("anchor_pairwise", "round_robin", 32, 1448, ["--batch-size", "16"]),
}


def scan_jpeg(side: int, seed: int, scans: int = 64) -> bytes:
    """A progressive JPEG of smooth noise whose smallest scan is repeated until it has ``scans`` scans."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(side // 16 + 1, side // 16 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((side, side), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", progressive=True, quality=80)
    data = buf.getvalue()
    have = data.count(b"\xff\xda")  # entropy-coded data stuffs 0xFF bytes: only markers match
    return data if have >= scans else repeat_smallest_scan(data, scans - have)


def memory(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024 / 1024  # kB -> GiB
    return out


def post(url: str, body: dict, timeout: float) -> tuple[int, float, dict | str]:
    import httpx

    start_t = time.perf_counter()
    r = httpx.post(f"{url}/v1/score", json=body, timeout=timeout)
    took = time.perf_counter() - start_t
    try:
        return r.status_code, took, r.json()
    except ValueError:
        return r.status_code, took, r.text[:200]


def run_case(name: str, timeout_s: float, workdir: Path) -> dict:
    scorer, mode, n, side, extra = CASES[name]
    args = argparse.Namespace(scorer=scorer, model=None)
    flags = [*extra, "--timeout", str(timeout_s)] + (["--mode", mode] if mode else [])
    proc, url = start(args, flags, workdir / f"{name}.log")
    try:
        loaded = memory(proc.pid)["VmRSS"]
        images = [base64.b64encode(scan_jpeg(side, seed)).decode() for seed in range(n)]
        body = {"prompt": "two red circles on a grey background", "images": images}
        status, took, answer = post(url, body, timeout_s + 600)
        small = [base64.b64encode(scan_jpeg(64, seed, scans=1)).decode() for seed in (998, 999)]
        probe_status, probe_s, _ = post(url, {"prompt": "a probe", "images": small}, 900)
        peak = memory(proc.pid)["VmHWM"]
    finally:
        stop(proc)
    statuses = {}
    for st in answer.get("statuses", []) if isinstance(answer, dict) else []:
        statuses[st] = statuses.get(st, 0) + 1
    return {"case": name, "scorer": scorer, "mode": mode, "images": n, "side": side, "flags": flags,
            "body_mb": round(sum(len(i) for i in images) / 2**20, 1), "status": status,
            "answer_s": round(took, 1), "image_statuses": statuses,
            "probe_status": probe_status, "probe_answered_s": round(probe_s, 1),
            "scoring_thread_busy_s": round(took + probe_s, 1),
            "rss_after_load_gib": round(loaded, 2), "peak_rss_gib": round(peak, 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", action="append", choices=sorted(CASES), help="a case (repeat; default: all)")
    p.add_argument("--timeout", type=float, default=120.0, help="the server's --timeout (default 120, its default)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.case or list(CASES):
            row = run_case(name, args.timeout, Path(tmp))
            results.append(row)
            print(json.dumps(row), flush=True)
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "load_avg_after": os.getloadavg(),
            "python": platform.python_version()}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
