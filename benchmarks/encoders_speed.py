"""Encoder baseline throughput: prefbench's batched scorers vs each reference package's own
scoring loop, same images, same weights, same machine, same run.

    # GPU (a lent card): real model sizes, random weights (~12 GB of checkpoints written to --work)
    python benchmarks/encoders_speed.py --shape full --device cuda --batch 64 --images 512 \\
        --out benchmarks/results/encoders_speed_<card>.json
    # CPU smoke run with the tiny test models
    python benchmarks/encoders_speed.py --shape tiny --device cpu --batch 64 --images 64

Ours: ``Scorer.score_batch`` over all items with ``image_batch=--batch`` (float16 on CUDA, the
scorers' default), images decoded on worker threads, after one warm-up item. Reference: the
calls a user of each package makes, timed inside the reference virtualenv
(scripts/setup_reference_envs.sh) by tests/reference/run_reference.py after one warm-up item:

* pickscore: the README's ``calc_probs(prompt, images)`` per prompt (float32, as written);
* clip / aesthetic: ImageReward's ``CLIPScore.score`` / ``AestheticScore.score`` per image
  (OpenAI ``clip``: float16 weights on CUDA);
* hpsv2: ``hpsv2.score(image_paths, prompt)`` per prompt (per-image forward passes under
  autocast; it reloads the checkpoint on every call, which is part of its cost);
* imagereward: ``ImageReward.score(prompt, image)`` per image (float32).

Without the reference venv only our side is measured (the JSON says so). Each row also records
the largest |ours - reference| score difference on the benchmark's images (float32 on CPU: ~1e-6;
on CUDA our float16 against the references' own precisions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINES = ("clip", "pickscore", "aesthetic", "hpsv2", "imagereward")
FOLDER = {"clip": "clip", "pickscore": "pickscore", "aesthetic": "aesthetic", "hpsv2": "hpsv2",
          "imagereward": "imagereward"}
PROMPTS = ["two red circles on a grey background", "a photo of a cat sitting on a house",
           "a detailed painting of a mountain above the sea", "a blue square left of a yellow triangle"]


def _portable(params: dict, folder: Path) -> dict:
    """The parameters as recorded: the model folder (in the benchmark's temp work folder) by its name."""
    return {k: folder.name if v == str(folder) else v for k, v in params.items()}


def checkpoints(work: Path, shape: str, names: list[str]) -> dict[str, Path]:
    from prefbench.testing import tiny_encoders as te

    out = {}
    for name in names:
        folder = work / f"{shape}-{FOLDER[name]}"
        if not folder.is_dir():
            if name == "pickscore":  # PickScore is CLIP-H
                te.build_clip(folder, "tiny" if shape == "tiny" else "vit-h14")
            else:
                te.build(name, folder, shape)
        out[name] = folder
    return out


def images(work: Path, n: int, size: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    root = work / f"images-{size}"
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = root / f"{i:05d}.jpg"
        if not path.is_file():
            arr = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
            Image.fromarray(arr).resize((size, size), Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def cases(paths: list[Path], per_prompt: int) -> list[dict]:
    return [{"prompt": PROMPTS[k % len(PROMPTS)], "images": [str(p) for p in paths[i:i + per_prompt]]}
            for k, i in enumerate(range(0, len(paths), per_prompt))]


def time_ours(name: str, folder: Path, case_list: list[dict], device: str, batch: int, workers: int) -> dict:
    import torch

    from prefbench.data.model import ImageRef, Item
    from prefbench.registry import build

    scorer, spec = build(name, {"model": str(folder), "device": device, "image_batch": batch, "workers": workers})
    scorer.setup()
    tasks = []
    for i, case in enumerate(case_list):
        refs = [ImageRef(Path(p).name, Path(p)) for p in case["images"]]
        tasks.append((Item(f"i{i}", case["prompt"], refs, [1] * len(refs)), list(range(len(refs)))))
    scorer.score_batch(tasks[:1])  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    results = []
    # the runner hands the scorer `batch_size` items per call; do the same
    for b in range(0, len(tasks), scorer.batch_size):
        results += scorer.score_batch(tasks[b:b + scorer.batch_size])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    n = sum(len(ix) for _, ix in tasks)
    scorer.close()
    scores = [[res[k].score for k in ix] for (_, ix), res in zip(tasks, results)]
    return {"images": n, "seconds": seconds, "images_per_s": n / seconds, "dtype": str(scorer._dtype),
            "params": _portable(spec["resolved"], folder), "scores": scores}


def time_reference(name: str, folder: Path, case_list: list[dict], device: str, python: Path) -> dict:
    spec = {"baseline": name, "model": str(folder), "cases": case_list, "device": device, "time": True}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(python), str(REPO / "tests" / "reference" / "run_reference.py"), fh.name],
                          capture_output=True, text=True, env=env)
    os.unlink(fh.name)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    result = json.loads(proc.stdout[proc.stdout.rindex("@@RESULT@@") + len("@@RESULT@@"):])
    return {"images": result["n_images"], "seconds": result["seconds"],
            "images_per_s": result["n_images"] / result["seconds"], "versions": result["versions"],
            "scores": result["scores"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=["tiny", "full"], default="tiny")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=64, help="images per forward pass (ours)")
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--per-prompt", type=int, default=8, help="images per prompt (item)")
    p.add_argument("--image-size", type=int, default=512)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--only", default=",".join(BASELINES))
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "prefbench-encoders-bench"))
    p.add_argument("--reference-python", default=str(REPO / ".venvs" / "reference" / "bin" / "python"))
    p.add_argument("--out", help="write the numbers as JSON here")
    args = p.parse_args(argv)

    import torch

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    names = [n.strip() for n in args.only.split(",")]
    folders = checkpoints(work, args.shape, names)
    case_list = cases(images(work, args.images, args.image_size), args.per_prompt)
    ref_python = Path(args.reference_python)
    rows = []
    for name in names:
        row = {"baseline": name, "ours": time_ours(name, folders[name], case_list, args.device, args.batch, args.workers)}
        row["reference"] = (time_reference(name, folders[name], case_list, args.device, ref_python)
                            if ref_python.is_file() else {"error": f"no reference venv at {ref_python}"})
        if "images_per_s" in row["reference"]:
            row["speedup"] = row["ours"]["images_per_s"] / row["reference"]["images_per_s"]
            # agreement at full size and in the run's dtypes (float16 on CUDA differs from float32)
            row["max_abs_score_diff"] = max(abs(a - b) for o, r in zip(row["ours"]["scores"], row["reference"]["scores"])
                                            for a, b in zip(o, r) if a is not None)
        rows.append(row)
        ref = row["reference"].get("images_per_s")
        ref_text = f"{ref:9.1f} img/s" if ref else "n/a"
        ratio = f"{row['speedup']:.2f}x  max|diff| {row['max_abs_score_diff']:.2g}" if ref else ""
        print(f"{name:12s} ours {row['ours']['images_per_s']:9.1f} img/s   reference {ref_text:>15s}   {ratio}",
              flush=True)
    report = {"shape": args.shape, "device": args.device,
              "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
              "batch": args.batch, "images": args.images, "per_prompt": args.per_prompt, "image_size": args.image_size,
              "torch": torch.__version__, "cpu_count": os.cpu_count(), "rows": rows}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
