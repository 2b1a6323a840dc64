"""The one prepared GPU check's steps and its summary (``benchmarks/gpu_check.sh`` runs this).

    python benchmarks/gpu_check.py env OUT                # what the machine has -> OUT/env.json
    python benchmarks/gpu_check.py summary OUT            # OUT/*.json -> OUT/gpu_check.json + a table

The summary sets each measured seq/s against its **roofline floor**: the throughput a 7B-shaped
Qwen2.5-VL would reach if every token cost 2 FLOP per parameter at 60% of the card's dense bf16
peak (about 989 TFLOP/s for an H100 SXM or H200). Issue 36 states the floors for 448 px images
and 256 reasoning tokens as about 66 seq/s, and about 120 seq/s prefill-only; this script
recomputes them from the measured prompt length, so the fraction is the share of the floor
achieved (attention, padding and the vision tower's extra work push real runs below 1).
Perf anchors from the issue (HF generate measured on an H200): 22.2 seq/s at batch 256 with 256
reasoning tokens, 37 seq/s prefill-only.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

#: dense bf16 peaks, FLOP/s (vendor figures; H200 has the H100 SXM's compute)
PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
#: parameters of the 7B-shaped model benchmarks/vlm_scoring.py builds (text 7.07e9 + vision 0.67e9)
PARAMS_7B = 8.29e9
UTILISATION = 0.6
ANCHORS = {"reasoning": {"hf_generate_seq_per_s": 22.2, "floor_seq_per_s": 66},
           "prefill-only": {"hf_generate_seq_per_s": 37.0, "floor_seq_per_s": 120}}
OPTIONAL = ("vllm", "trl", "unsloth", "fastapi", "uvicorn", "prefbench")


def env(out: Path) -> dict:
    info: dict = {"python": platform.python_version(),
                  "packages": {m: importlib.util.find_spec(m) is not None for m in OPTIONAL}}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
            info["cuda"] = torch.version.cuda
    except ImportError:
        info["torch"] = None
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True)
        info["nvidia_smi"] = smi.stdout.strip()
    (out / "env.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def peak_for(card: str) -> float | None:
    return next((v for k, v in PEAKS.items() if k in (card or "")), None)


def floor_seq_per_s(prompt_tokens: int, new_tokens: int, peak: float, params: float = PARAMS_7B) -> float:
    return UTILISATION * peak / (2 * params * (prompt_tokens + new_tokens))


def summary(out: Path) -> dict:
    env_info = json.loads((out / "env.json").read_text()) if (out / "env.json").exists() else {}
    report: dict = {"env": env_info, "steps": {}}
    scoring = out / "vlm_scoring_7b.json"
    if scoring.exists():
        data = json.loads(scoring.read_text())
        peak = peak_for(data.get("card", ""))
        rows = []
        for r in data["results"]:
            new = data["think_tokens"] + 3 if r["mode"] == "reasoning" else 1
            floor = floor_seq_per_s(r["prompt_tokens"], new, peak) if peak and data.get("shape") == "7b" else None
            rows.append({**{k: r[k] for k in ("batch", "mode", "prompt_tokens", "ours_seq_per_s", "baseline_seq_per_s",
                                              "speedup")},
                         "floor_seq_per_s": round(floor, 1) if floor else None,
                         "fraction_of_floor": round(r["ours_seq_per_s"] / floor, 3) if floor else None,
                         "issue_anchor": ANCHORS.get(r["mode"])})
        report["steps"]["transformers_7b"] = {"card": data.get("card"), "peak_flop_per_s": peak, "rows": rows}
    for name in ("vllm", "serve", "unsloth_grpo", "hpsv3"):
        path = out / f"{name}.json"
        report["steps"][name] = json.loads(path.read_text()) if path.exists() else {"ran": False}
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, step in report["steps"].items():
        if "rows" in step:
            print(f"{name} on {step['card']}:")
            for r in step["rows"]:
                print(f"  batch {r['batch']:>4} {r['mode']:<13} {r['ours_seq_per_s']:>8} seq/s  floor "
                      f"{r['floor_seq_per_s']}  fraction {r['fraction_of_floor']}  (HF generate+forward "
                      f"{r['baseline_seq_per_s']}, {r['speedup']}x)")
        else:
            print(f"{name}: {step.get('reason') or ('ran' if step.get('ran', True) else 'not run')}")
    return report


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("env", "summary"):
        print(__doc__)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (env if argv[0] == "env" else summary)(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
