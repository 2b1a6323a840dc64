"""Parity: with the same random weights and the same images, each encoder baseline's scores equal
its reference implementation's to 1e-5.

The references run in their own virtualenv (``scripts/setup_reference_envs.sh``, default
``.venvs/reference``, or ``PREFBENCH_REFERENCE_PYTHON``): ImageReward's package needs
transformers<=4.55, and PickScore's README code predates transformers 5. What each side runs:

===========  ===================================================  =====================================
baseline     reference (tests/reference/run_reference.py)          ours
===========  ===================================================  =====================================
pickscore    PickScore README ``calc_probs`` (transformers 4.55)    transformers 5 CLIPModel, batched
clip         ImageReward's ``CLIPScore.score`` (OpenAI ``clip``)    transformers 5 CLIPModel, batched
aesthetic    ImageReward's ``AestheticScore.score`` (LAION MLP      transformers 5 CLIPModel + our MLP
             on OpenAI ``clip``)
hpsv2        ``hpsv2.img_score.score`` (HPSv2's open_clip fork,     PyPI open_clip + our transform
             its transform and tokenizer)
imagereward  ``ImageReward.load(...).score`` and                    the port on transformers 5 BLIP
             ``inference_rank`` (image-reward 1.5)                  classes
===========  ===================================================  =====================================
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.cli import REPO  # noqa: E402
from tests.fixtures.encoders import FOLDER, build_scorer, cases, score_cases
from tests.fixtures.extras import skip_without_extra

SCRIPT = REPO / "tests" / "reference" / "run_reference.py"
TOL = 1e-5


def reference_python() -> Path:
    path = Path(os.environ.get("PREFBENCH_REFERENCE_PYTHON", REPO / ".venvs" / "reference" / "bin" / "python"))
    if not path.is_file():
        pytest.skip(f"reference virtualenv not found at {path}: build it with scripts/setup_reference_envs.sh "
                    "(or set PREFBENCH_REFERENCE_PYTHON)")
    return path


def run_reference(baseline: str, model: Path, case_list: list[dict], tmp_path: Path, **options) -> dict:
    spec = tmp_path / f"spec_{baseline}.json"
    spec.write_text(json.dumps({"baseline": baseline, "model": str(model), "cases": case_list, **options}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(reference_python()), str(SCRIPT), str(spec)], capture_output=True, text=True,
                          timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    marker = proc.stdout.rindex("@@RESULT@@")
    return json.loads(proc.stdout[marker + len("@@RESULT@@"):])


def assert_same(ours: list[list[float]], ref: list[list[float]]):
    assert len(ours) == len(ref)
    worst = max(abs(a - b) for o, r in zip(ours, ref, strict=True) for a, b in zip(o, r, strict=True))
    assert worst <= TOL, f"max |ours - reference| = {worst:.3g}\nours={ours}\nref={ref}"
    # a meaningful comparison: the scores differ between images by far more than the tolerance
    flat = [x for o in ours for x in o]
    assert max(flat) - min(flat) > 1000 * TOL


@pytest.mark.parametrize("name", ["pickscore", "clip", "aesthetic", "hpsv2", "imagereward"])
def test_parity_with_reference(name, tiny_encoders, parity_images, tmp_path):
    skip_without_extra(name)
    reference_python()
    case_list = cases(parity_images)
    ref = run_reference(name, tiny_encoders / FOLDER[name], case_list, tmp_path)
    ours = score_cases(build_scorer(name, tiny_encoders, image_batch=5, workers=3), case_list)
    assert_same(ours, ref["scores"])
    assert ref["versions"]["transformers"].startswith("4."), ref["versions"]
    if name == "pickscore":
        # the README's processor call resolved to the PIL-based processor on transformers 4
        assert ref["image_processor"] == "CLIPImageProcessor"
    if name == "aesthetic":
        assert ref["missing"] == [] and ref["unexpected"] == []
    if name == "imagereward":
        # ImageReward.load uses strict=False: make sure every weight the score uses was loaded
        assert set(ref["not_loaded"]) <= {"blip.text_encoder.embeddings.position_ids", "blip.vision_proj.weight",
                                          "blip.vision_proj.bias", "blip.text_proj.weight", "blip.text_proj.bias"}
        assert_same(ours, ref["inference_rank"])


def test_hpsv2_without_antialias_matches_hpsv2_on_old_torchvision(tiny_encoders, parity_images, tmp_path):
    """``-S antialias=false`` reproduces HPSv2's resize as torchvision<0.17 ran it (its release era);
    the two settings differ by far more than the tolerance."""
    skip_without_extra("hpsv2")
    reference_python()
    case_list = cases(parity_images)
    ref = run_reference("hpsv2", tiny_encoders / "hpsv2", case_list, tmp_path, antialias=False)
    ours = score_cases(build_scorer("hpsv2", tiny_encoders, antialias=False), case_list)
    assert_same(ours, ref["scores"])
    default = score_cases(build_scorer("hpsv2", tiny_encoders), case_list)
    assert max(abs(a - b) for o, d in zip(ours, default) for a, b in zip(o, d)) > 100 * TOL
