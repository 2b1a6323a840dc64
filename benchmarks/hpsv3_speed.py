"""HPSv3 scoring throughput: prefbench's batched ``hpsv3`` against the official package's
``HPSv3RewardInferencer.reward`` called one image at a time (as trainers call it) and in batches,
same checkpoint, same images and prompts, one run.

    # CPU, the tiny random checkpoint (official side in .venvs/reference-hpsv3 when it exists)
    python benchmarks/hpsv3_speed.py --shape tiny --device cpu --images 16 --batch 8
    # a lent GPU: Qwen2-VL-7B sizes with random bf16 weights (~16 GB written to --work); the device
    # machine has no reference venv, so only prefbench's side is measured there
    python benchmarks/hpsv3_speed.py --shape 7b --device cuda --images 64 --batch 16 --out FILE.json

Ours: ``HPSv3Scorer.score_batch`` over items of ``--per-prompt`` images with ``image_batch=--batch``
(float32 on CPU, bfloat16 on CUDA), and ``forward`` one image per call, both after a warm-up call.
Official: tests/reference/run_hpsv3_reference.py in the reference venv (float32, CPU), one image
per ``reward`` call and ``--batch`` per call, after a warm-up call. Model loading is not timed.
The two sides alternate for ``--rounds`` rounds and the medians are reported (a shared machine's
load then hits both alike).
Also recorded: the largest |mu| difference between the two sides on these images (parity).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPTS = ["two red circles on a grey background", "a photo of a cat sitting on a house",
           "a detailed painting of a mountain above the sea", "a blue square left of a yellow triangle"]


def _images(folder: Path, n: int) -> list[Path]:
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        w, h = [(512, 512), (640, 384), (384, 640), (256, 256)][k % 4]
        im = Image.new("RGB", (w, h), (240 - 7 * k % 200, 230, 220))
        ImageDraw.Draw(im).ellipse((w // 6 + k, h // 5, w * 2 // 3, h * 3 // 4), fill=(30 + 11 * k % 200, 60, 200))
        out.append(folder / f"{k:03d}.png")
        im.save(out[-1])
    return out


def ours(model: Path, paths: list[Path], prompts: list[str], per_prompt: int, batch: int, device: str,
         prompt_file: str | None) -> dict:
    from PIL import Image

    from prefbench.data.model import ImageRef, Item
    from prefbench.scorers.hpsv3.scorer import HPSv3Scorer

    scorer = HPSv3Scorer(model=str(model), device=device, image_batch=batch, prompt_file=prompt_file)
    start = time.perf_counter()
    scorer.setup()
    load_s = time.perf_counter() - start
    items = []
    for i in range(0, len(paths), per_prompt):
        refs = [ImageRef(key=p.name, path=p) for p in paths[i:i + per_prompt]]
        items.append(Item(item_id=str(i), prompt=prompts[i], images=refs, ranks=list(range(1, len(refs) + 1))))
    scorer.score_batch([(items[0], [0])])  # warm-up
    sync = _sync(device)
    start = time.perf_counter()
    results = scorer.score_batch([(it, list(range(it.n_images))) for it in items])
    sync()
    batched_s = time.perf_counter() - start
    mus = [r[k].score for r, it in zip(results, items, strict=True) for k in range(it.n_images)]
    images = [Image.open(p) for p in paths]
    start = time.perf_counter()
    for im, q in zip(images, prompts, strict=True):
        scorer.forward([im], [q])
    sync()
    single_s = time.perf_counter() - start
    return {"load_s": load_s, "batched_s": batched_s, "one_at_a_time_s": single_s, "mu": mus,
            "prompt_source": scorer.prompt().record.get("source")}


def _sync(device: str):
    import torch

    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def official(python: Path, model: Path, paths: list[Path], prompts: list[str], batch: int, work: Path) -> dict:
    spec = work / "spec.json"
    cases = [{"image": str(p), "prompt": q} for p, q in zip(paths, prompts, strict=True)]
    spec.write_text(json.dumps({"model": str(model), "config": str(work / "hpsv3.yaml"), "batches": [cases],
                                "timing": {"batch": batch}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(python), str(REPO / "tests" / "reference" / "run_hpsv3_reference.py"), str(spec)],
                          capture_output=True, text=True, env=env, cwd=work, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout[proc.stdout.rindex("@@RESULT@@") + len("@@RESULT@@"):])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("tiny", "7b"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--per-prompt", type=int, default=4, help="images per prompt (one item)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of both sides; medians reported")
    parser.add_argument("--work", help="folder for the checkpoint and images (default: a temp folder)")
    parser.add_argument("--reference-python", default=os.environ.get(
        "PREFBENCH_HPSV3_REFERENCE_PYTHON", str(REPO / ".venvs" / "reference-hpsv3" / "bin" / "python")))
    parser.add_argument("--prompt-file", help="-S prompt_file for prefbench (default: the reference venv's "
                                              "installed data_collator_qwen.py, else the pinned download)")
    parser.add_argument("--out", help="write the JSON here too")
    args = parser.parse_args(argv)

    from prefbench.testing.tiny_hpsv3 import build_tiny_hpsv3

    work = Path(args.work or tempfile.mkdtemp(prefix="hpsv3-speed-"))
    model = work / f"hpsv3-{args.shape}"
    if not (model / "HPSv3.safetensors").is_file():
        build_tiny_hpsv3(model, shape=args.shape)
    paths = _images(work / "images", args.images)
    prompts = [PROMPTS[(k // args.per_prompt) % len(PROMPTS)] for k in range(args.images)]
    python = Path(args.reference_python)
    prompt_file = args.prompt_file
    if prompt_file is None and python.is_file():
        found = subprocess.run([str(python), "-c", "import importlib.util as u, pathlib; print(pathlib.Path("
                                "u.find_spec('hpsv3').origin).parent / 'dataset' / 'data_collator_qwen.py')"],
                               capture_output=True, text=True)
        prompt_file = found.stdout.strip() or None

    record = {"shape": args.shape, "device": args.device, "images": args.images, "batch": args.batch,
              "per_prompt": args.per_prompt, "machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        import torch

        record["torch"] = torch.__version__
        record["threads"] = torch.get_num_threads()
        if args.device.startswith("cuda"):
            record["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    run_official = python.is_file() and args.device == "cpu"
    mine_rounds, ref_rounds = [], []
    for _ in range(args.rounds):  # alternate the sides: a shared machine's load hits both alike
        mine_rounds.append(ours(model, paths, prompts, args.per_prompt, args.batch, args.device, prompt_file))
        if run_official:
            ref_rounds.append(official(python, model, paths, prompts, args.batch, work))
    mine = {k: statistics.median(r[k] for r in mine_rounds) for k in ("load_s", "batched_s", "one_at_a_time_s")}
    mine.update(mu=mine_rounds[0]["mu"], prompt_source=mine_rounds[0]["prompt_source"])
    record["rounds"] = args.rounds
    record["per_round_s"] = {
        "prefbench": [{k: r[k] for k in ("batched_s", "one_at_a_time_s")} for r in mine_rounds],
        "official": [{k: r["timing"][k] for k in ("batched_s", "one_at_a_time_s")} for r in ref_rounds]}
    record["prefbench"] = {k: v for k, v in mine.items() if k != "mu"}
    n = args.images
    record["prefbench"]["images_per_s_batched"] = n / mine["batched_s"]
    record["prefbench"]["images_per_s_one_at_a_time"] = n / mine["one_at_a_time_s"]
    if run_official:
        ref = ref_rounds[0]
        t = {k: statistics.median(r["timing"][k] for r in ref_rounds) for k in ("one_at_a_time_s", "batched_s")}
        record["official"] = {"one_at_a_time_s": t["one_at_a_time_s"], "batched_s": t["batched_s"],
                              "images_per_s_one_at_a_time": n / t["one_at_a_time_s"],
                              "images_per_s_batched": n / t["batched_s"], "versions": ref["versions"]}
        record["ratios"] = {
            "prefbench_batched_vs_official_one_at_a_time": t["one_at_a_time_s"] / mine["batched_s"],
            "prefbench_batched_vs_official_batched": t["batched_s"] / mine["batched_s"],
        }
        record["max_abs_mu_diff"] = max(abs(a - b[0]) for a, b in zip(mine["mu"], ref["outputs"][0], strict=True))
    else:
        record["official"] = (f"not run: no reference venv at {python} (scripts/setup_reference_envs.sh)"
                              if not python.is_file() else "not run: the official side is timed on CPU only")
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
