"""The same jobs through ``--engine vllm`` and ``--engine transformers``, on CPU, tiny model.

    # in the vLLM venv (both engines run there: same torch, same transformers); the tiny model is
    # built with the project venv (its chat template comes from TRL, which the vLLM venv lacks)
    .venv/bin/python -m prefbench.testing.tiny_vlm /tmp/tiny
    .venvs/vllm/bin/python benchmarks/engines_cpu.py --model /tmp/tiny --only rating \
        --out benchmarks/results/engines_cpu_tiny.json
    .venvs/vllm/bin/python benchmarks/engines_cpu.py --model /tmp/tiny --only anchor --image 224 \
        --anchor-items 16 --repeat 3 --out benchmarks/results/engines_cpu_tiny_anchor.json

What is timed (``generate`` calls only; loading is not):

Images are ``--image`` px squares, encoded at that size (``max_pixels`` = its square; the tiny
checkpoint's processor would otherwise shrink them to 112 px).

* ``rating``: ``--jobs`` rating prompts (one image each), with ``--think``
  reasoning tokens (greedy; the random model never writes ``<answer>``, so every rollout is
  forced there, the same tokens on both engines) and prefill-only;
* ``anchor``: ``--anchor-items`` items x (``--anchor-images`` - 1) anchor comparisons,
  prefill-only, through the vLLM engine with prefix caching on and off.

vLLM's prefix cache is reset before each timed call, so a call reuses only what its own jobs
share (the template, and in anchor comparisons the anchor), never an earlier call's prompts.
Each engine runs in its own worker process (vLLM binds the process's threads to cores, which
would slow the other engine in the same process), one worker at a time, never side by side;
rounds alternate the order of the workers (``--rounds``) and each worker reports the best of
``--repeat`` calls after a warm-up call. Ratios are computed from the best time of each side
over all rounds, and from the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def worker(args) -> dict:
    from vlm_scoring import anchor_jobs, make_jobs, spec

    if args.worker == "transformers":
        from prefbench.engines.transformers import TransformersEngine

        engine = TransformersEngine(model=args.model, dtype="float32", device="cpu", max_batch_tokens=10**7,
                                    max_pixels=args.image ** 2)
    else:
        from prefbench.engines.vllm import VLLMEngine

        engine = VLLMEngine(model=args.model, dtype="float32", prefix_caching=args.worker == "vllm",
                            max_pixels=args.image ** 2)
    cands = ("0", "1", "2", "3", "4", "5")
    engine.load(cands)
    if args.task == "rating":
        jobs, warm = make_jobs(args.jobs, args.image), make_jobs(4, args.image, seed=99)
        modes = {"reasoning": args.think, "prefill-only": 0}
    else:
        jobs = anchor_jobs(args.anchor_items, args.anchor_images, args.image)
        warm = anchor_jobs(1, 3, args.image, seed=7)
        modes = {"prefill-only": 0}
    out = {}
    for mode, think in modes.items():
        s = spec(candidates=cands[:2] if args.task == "anchor" else cands[1:], budget=think, temperature=0.0)
        engine.generate(warm, s)
        times = []
        for _ in range(args.repeat):
            # the prefix cache outlives a call: without a reset, a repeat of the same jobs would
            # find its whole prompts cached by the call before it
            if getattr(engine, "llm", None) is not None:
                engine.llm.reset_prefix_cache()
            t0 = time.perf_counter()
            engine.generate(jobs, s)
            times.append(time.perf_counter() - t0)
        out[mode] = {"times_s": [round(t, 4) for t in times], "seq": len(jobs)}
    if hasattr(engine, "stats"):
        out["engine_stats"] = dict(engine.stats)
    return out


def run_worker(name: str, task: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--task", task, "--model", args.model, "--jobs", str(args.jobs),
           "--think", str(args.think), "--image", str(args.image), "--repeat", str(args.repeat),
           "--anchor-items", str(args.anchor_items), "--anchor-images", str(args.anchor_images)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", VLLM_ENABLE_V1_MULTIPROCESSING="0", VLLM_LOGGING_LEVEL="ERROR")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ratio(fast: list[float], slow: list[float]) -> tuple[float, float]:
    return round(min(slow) / min(fast), 3), round(statistics.median(slow) / statistics.median(fast), 3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint folder (default: build the tiny Qwen2.5-VL in a temp folder)")
    ap.add_argument("--jobs", type=int, default=32)
    ap.add_argument("--think", type=int, default=32)
    ap.add_argument("--image", type=int, default=112)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--anchor-items", type=int, default=4)
    ap.add_argument("--anchor-images", type=int, default=9)
    ap.add_argument("--only", choices=("rating", "anchor"), help="time one part only")
    ap.add_argument("--out")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--task", default="rating", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    tmp = tempfile.TemporaryDirectory()
    if not args.model:  # needs trl (the chat template's source), as in the project venv
        from prefbench.testing.tiny_vlm import build_tiny_vlm

        args.model = str(build_tiny_vlm(Path(tmp.name) / "tiny"))
    import torch
    import transformers
    import vllm

    times: dict[str, dict[str, list[float]]] = {}
    for r in range(args.rounds):
        order = ["transformers", "vllm"] if r % 2 == 0 else ["vllm", "transformers"]
        for name in order if args.only != "anchor" else []:
            res = run_worker(name, "rating", args)
            for mode in ("reasoning", "prefill-only"):
                times.setdefault(f"{name}/{mode}", {"t": []})["t"] += res[mode]["times_s"]
        order = ["vllm", "vllm-nocache"] if r % 2 == 0 else ["vllm-nocache", "vllm"]
        for name in order if args.only != "rating" else []:
            res = run_worker(name, "anchor", args)
            times.setdefault(f"{name}/anchor", {"t": []})["t"] += res["prefill-only"]["times_s"]
            times[f"{name}/anchor"]["stats"] = res.get("engine_stats")
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    n_anchor = args.anchor_items * (args.anchor_images - 1)
    report = {"device": "cpu", "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "torch": torch.__version__, "transformers": transformers.__version__, "vllm": vllm.__version__,
              "jobs": args.jobs, "think_tokens": args.think, "image_side": args.image,
              "anchor_comparisons": n_anchor, "rounds": args.rounds, "repeat": args.repeat, "results": []}
    for mode in ("reasoning", "prefill-only") if args.only != "anchor" else ():
        hf, vl = times[f"transformers/{mode}"]["t"], times[f"vllm/{mode}"]["t"]
        best, med = ratio(vl, hf)
        row = {"mode": mode, "transformers_seq_per_s": round(args.jobs / min(hf), 2),
               "vllm_seq_per_s": round(args.jobs / min(vl), 2), "vllm_over_transformers": best,
               "vllm_over_transformers_median": med, "times_transformers_s": hf, "times_vllm_s": vl}
        report["results"].append(row)
        print(f"{mode:<13} transformers {row['transformers_seq_per_s']:>8.2f} seq/s  vllm {row['vllm_seq_per_s']:>8.2f} "
              f"seq/s  vllm/transformers {best:.2f}x (median {med:.2f}x)")
    if args.only == "rating":
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        return 0
    on, off = times["vllm/anchor"]["t"], times["vllm-nocache/anchor"]["t"]
    best, med = ratio(on, off)
    report["anchor_prefix_caching"] = {
        "comparisons": n_anchor, "cache_on_seq_per_s": round(n_anchor / min(on), 2),
        "cache_off_seq_per_s": round(n_anchor / min(off), 2), "on_over_off": best, "on_over_off_median": med,
        "times_on_s": on, "times_off_s": off, "cached_prompt_tokens_on": (times["vllm/anchor"].get("stats") or {}).get(
            "cached_prompt_tokens"), "prompt_tokens_on": (times["vllm/anchor"].get("stats") or {}).get("prompt_tokens")}
    a = report["anchor_prefix_caching"]
    print(f"anchor comparisons (prefill-only, {n_anchor}): prefix caching on {a['cache_on_seq_per_s']:.2f} vs off "
          f"{a['cache_off_seq_per_s']:.2f} seq/s, ratio {best:.2f}x (median {med:.2f}x); cached prompt tokens "
          f"{a['cached_prompt_tokens_on']} of {a['prompt_tokens_on']}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
