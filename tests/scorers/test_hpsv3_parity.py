"""Parity: prefbench's ``hpsv3`` against the official package (hpsv3 1.0.0 on transformers 4.45.2,
``HPSv3RewardInferencer(config_path, checkpoint_path, device='cpu').reward(image_paths, prompts)``)
on the tiny random checkpoint, float32 on CPU: mu and sigma equal within 1e-4, for one padded batch
of images of different sizes and prompts, and for images scored one at a time (as trainers call it).

The official package runs in its own virtualenv (``scripts/setup_reference_envs.sh`` builds
``.venvs/reference-hpsv3``; or ``PREFBENCH_HPSV3_REFERENCE_PYTHON``), through
tests/reference/run_hpsv3_reference.py in a subprocess. prefbench reads the prompt from the
package's installed ``data_collator_qwen.py``, which is checked to be the pinned wheel's member.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.cli import REPO

SCRIPT = REPO / "tests" / "reference" / "run_hpsv3_reference.py"
TOL = 1e-4
PROMPTS = ["two red circles on a white background", "a blue square", "cute chibi anime cartoon fox, smiling",
           "a green triangle {not a field}"]


def reference_python() -> Path:
    path = Path(os.environ.get("PREFBENCH_HPSV3_REFERENCE_PYTHON", REPO / ".venvs" / "reference-hpsv3" / "bin" / "python"))
    if not path.is_file():
        pytest.skip(f"hpsv3 reference virtualenv not found at {path}: build it with scripts/setup_reference_envs.sh "
                    "(or set PREFBENCH_HPSV3_REFERENCE_PYTHON)")
    return path


def _images(root: Path) -> list[Path]:
    from PIL import Image, ImageDraw

    out = []
    for k, (size, colour) in enumerate([((512, 512), (220, 30, 30)), ((300, 200), (30, 30, 220)),
                                        ((64, 64), (30, 160, 60)), ((200, 600), (240, 200, 40))]):
        im = Image.new("RGB", size, (245, 245, 245))
        w, h = size
        ImageDraw.Draw(im).ellipse((w // 5, h // 4, w * 3 // 4, h * 4 // 5), fill=colour)
        out.append(root / f"{k}.png")
        im.save(out[-1])
    return out


def test_mu_and_sigma_equal_the_official_package(tiny_hpsv3_dir, tmp_path):
    python = reference_python()
    from prefbench.scorers.hpsv3.scorer import HPSv3Scorer

    paths = _images(tmp_path)
    cases = [{"image": str(p), "prompt": q} for p, q in zip(paths, PROMPTS, strict=True)]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"model": str(tiny_hpsv3_dir), "config": str(tmp_path / "hpsv3_tiny.yaml"),
                                "batches": [cases] + [[c] for c in cases]}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(python), str(SCRIPT), str(spec)], capture_output=True, text=True, timeout=900,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ref = json.loads(proc.stdout[proc.stdout.rindex("@@RESULT@@") + len("@@RESULT@@"):])
    assert ref["versions"]["transformers"] == "4.45.2" and ref["versions"]["dtype"] == "torch.float32"

    from PIL import Image

    scorer = HPSv3Scorer(model=str(tiny_hpsv3_dir), prompt_file=ref["prompt_source"], device="cpu", dtype="float32")
    assert scorer.prompt().record["source"] == "pinned-file"  # the installed file is the pinned wheel's member
    images = [Image.open(p) for p in paths]
    ours_batched = scorer.forward(images, PROMPTS)
    ours_single = [scorer.forward([im], [q])[0] for im, q in zip(images, PROMPTS, strict=True)]
    official_batched = ref["outputs"][0]
    official_single = [b[0] for b in ref["outputs"][1:]]

    worst_mu = worst_sigma = 0.0
    for ours, official in ((ours_batched, official_batched), (ours_single, official_single)):
        for (mu, log_sigma), (mu_ref, log_sigma_ref) in zip(ours, official, strict=True):
            worst_mu = max(worst_mu, abs(mu - mu_ref))
            worst_sigma = max(worst_sigma, abs(math.exp(log_sigma) - math.exp(log_sigma_ref)))
    print(f"hpsv3 parity (tiny checkpoint, float32 CPU, {len(cases)} images batched + one at a time): "
          f"max |mu diff| {worst_mu:.2e}, max |sigma diff| {worst_sigma:.2e}")
    assert worst_mu <= TOL and worst_sigma <= TOL
    # the comparison can fail: the images and prompts move the official outputs well beyond the tolerance
    assert max(m for m, _ in official_batched) - min(m for m, _ in official_batched) > 100 * TOL
