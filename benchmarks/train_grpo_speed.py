"""GRPO training throughput of ``prefbench train`` (TRL's GRPOTrainer): steps/s and samples/s.

    # GPU (H100/H200): a Qwen2.5-VL-3B-shaped model, random bf16 weights built from its config,
    # LoRA, num_generations 4, 256 completion tokens; plain TRL generation vs TRL + vLLM colocate
    python benchmarks/train_grpo_speed.py --shape 3b --modes plain vllm
    # CPU, slowly, with the tiny test model (checks the script, says nothing about GPU speed)
    python benchmarks/train_grpo_speed.py --shape tiny --completion 16 --steps 2 --modes plain

Each mode runs ``prefbench.training.train`` on the demo rating task for ``--warmup`` +
``--steps`` optimizer steps and reports, over the measured steps only, the mean of TRL's own
per-step ``step_time`` (generation + reward + loss + backward + optimizer): steps/s and
samples/s (completions per second: ``--prompts`` x ``--num-generations`` per step). Random
weights never write ``<answer>``, so every completion runs to ``--completion`` tokens
(``min_new_tokens`` pins it). A shaping reward (completion length) keeps the advantages
non-zero so the backward pass does real work. The vLLM mode needs ``vllm`` importable; it is
skipped, with a note, where it is not.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

QWEN25_VL_3B_TEXT = dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                         num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6, vocab_size=151936,
                         tie_word_embeddings=True,
                         rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0,
                                          "mrope_section": [16, 24, 24]})
QWEN25_VL_3B_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[7, 15, 23, 31])


def build_model(shape: str, root: Path) -> Path:
    """A checkpoint folder: the tiny test model, or a 3B-shaped random-weight model that uses the
    tiny model's processor (its extra token ids decode to empty text, which is fine here)."""
    from prefbench.testing.tiny_vlm import build_tiny_vlm

    tiny = build_tiny_vlm(root / "tiny-vlm")
    if shape == "tiny":
        return tiny
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    t = Qwen2_5_VLConfig.from_pretrained(tiny)
    config = Qwen2_5_VLConfig(
        text_config={**QWEN25_VL_3B_TEXT, "bos_token_id": t.text_config.bos_token_id,
                     "eos_token_id": t.text_config.eos_token_id, "pad_token_id": t.text_config.pad_token_id},
        vision_config=QWEN25_VL_3B_VISION, image_token_id=t.image_token_id, video_token_id=t.video_token_id,
        vision_start_token_id=t.vision_start_token_id, vision_end_token_id=t.vision_end_token_id,
        tie_word_embeddings=True)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = t.text_config.eos_token_id
    model.generation_config.pad_token_id = t.text_config.pad_token_id
    out = root / "qwen2.5-vl-3b-shaped"
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(tiny).save_pretrained(out)
    del model
    return out


def length_reward(completions, **_):
    from prefbench.training.rewards import completion_text

    return [len(completion_text(c)) / 1000 for c in completions]


def run_mode(mode: str, model: Path, args, root: Path) -> dict:
    from prefbench.training import TrainConfig, train

    trl: dict = {"generation_kwargs": {"min_tokens" if mode == "vllm" else "min_new_tokens": args.completion}}
    if mode == "vllm":
        trl.update(use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=args.vllm_memory)
    cfg = TrainConfig(task="rating", model=str(model), output=str(root / f"out-{mode}"), dataset="demo",
                      max_steps=args.warmup + args.steps, num_generations=args.num_generations,
                      max_completion_length=args.completion, per_device_batch_size=args.prompts * args.num_generations,
                      lora=not args.full, save_steps=10_000, progress=False, device=args.device,
                      backend="transformers", trl=trl)
    t0 = time.perf_counter()
    rec = train(cfg, extra_reward_funcs=[length_reward])
    times = [t for step, t in rec["curves"]["step_time"] if step > args.warmup]
    mean = statistics.fmean(times)
    return {"mode": mode, "steps_measured": len(times), "step_time_s": round(mean, 4),
            "steps_per_s": round(1 / mean, 4),
            "samples_per_s": round(args.prompts * args.num_generations / mean, 3),
            "completion_tokens_per_s": round(args.prompts * args.num_generations * args.completion / mean, 1),
            "mean_completion_length": statistics.fmean(v for s, v in rec["curves"]["completions/mean_length"]
                                                       if s > args.warmup),
            "wall_s": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=["tiny", "3b"], default="3b")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--modes", nargs="+", choices=["plain", "vllm"], default=["plain", "vllm"])
    p.add_argument("--num-generations", type=int, default=4)
    p.add_argument("--prompts", type=int, default=1, help="prompts per optimizer step")
    p.add_argument("--completion", type=int, default=256, help="completion tokens per rollout")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    p.add_argument("--vllm-memory", type=float, default=0.3, help="vllm_gpu_memory_utilization (colocate)")
    p.add_argument("--record", help="append the result as one JSON line to this file")
    args = p.parse_args(argv)

    import importlib.util

    import torch

    root = Path(tempfile.mkdtemp(prefix="prefbench-grpo-bench-"))
    model = build_model(args.shape, root)
    result = {
        "benchmark": "train_grpo_speed", "shape": args.shape, "lora": not args.full,
        "num_generations": args.num_generations, "prompts_per_step": args.prompts, "completion": args.completion,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() and args.device != "cpu"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__, "modes": [], "skipped": {},
    }
    for mode in args.modes:
        if mode == "vllm" and importlib.util.find_spec("vllm") is None:
            result["skipped"][mode] = "vllm is not installed"
            continue
        if mode == "vllm" and not torch.cuda.is_available():
            result["skipped"][mode] = "TRL's vLLM colocate mode needs a CUDA GPU"
            continue
        result["modes"].append(run_mode(mode, model, args, root))
    print(json.dumps(result, indent=2))
    if args.record:
        with open(args.record, "a") as fh:
            fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
