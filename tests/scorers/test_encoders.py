"""Encoder baselines in the main environment: runs through the CLI, per-image errors, batching,
safe and explicit weight loading, registry listing. Parity with the reference implementations
is in test_encoders_parity.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.encoders import ALL, FOLDER, build_scorer, cases, score_cases
from tests.fixtures.extras import skip_without_extra

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_list_shows_the_five_baselines_with_their_extras():
    data = json.loads(run_cli(["list", "--json"]).stdout)
    by_name = {s["name"]: s for s in data["scorers"]}
    for name in ALL:
        assert by_name[name]["extra"] == name, by_name[name]
    text = run_cli(["list"]).stdout
    assert all(name in text for name in ALL)


def test_listing_imports_no_framework():
    code = ("import sys, contextlib, io\nfrom prefbench.cli import main\nfrom prefbench.registry import entries\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['list'])\n"
            "print([e.installed for e in entries().values()])\n"
            "print(sorted(m for m in ('torch', 'transformers', 'open_clip', 'torchvision') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", ALL)
def test_run_on_demo_offline(name, tiny_encoders, tmp_path):
    """The issue's done-criterion: `prefbench run --scorer NAME --model TINY --dataset demo --json`."""
    skip_without_extra(name)
    proc = run_cli(["run", "--scorer", name, "--model", tiny_encoders / FOLDER[name], "--dataset", "demo", "--limit",
                    "12", "--json", "--out", tmp_path / "run", "-S", "device=cpu"], env_extra=OFFLINE, timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "complete" and out["counts"]["error"] == 0 and out["counts"]["ok"] > 40, out
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["model"]["id"] == str(tiny_encoders / FOLDER[name])
    scores = [json.loads(line)["score"] for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(set(scores)) > len(scores) // 2, "a random model should not give (nearly) constant scores"


@pytest.mark.parametrize("name", ALL)
def test_batching_and_threads_do_not_change_scores(name, tiny_encoders, parity_images):
    skip_without_extra(name)
    one = score_cases(build_scorer(name, tiny_encoders, image_batch=1, workers=1), cases(parity_images))
    many = score_cases(build_scorer(name, tiny_encoders, image_batch=64, workers=4), cases(parity_images))
    for a, b in zip(one, many, strict=True):
        assert a == pytest.approx(b, abs=1e-5)


@pytest.mark.parametrize("name", ["clip", "imagereward"])
def test_a_bad_image_is_an_error_and_the_rest_are_scored(name, tiny_encoders, parity_images, tmp_path):
    from prefbench.data.model import ImageRef, Item

    skip_without_extra(name)
    broken = tmp_path / "broken.png"
    broken.write_bytes(parity_images[0].read_bytes()[:100])
    refs = [ImageRef("ok0", parity_images[0]), ImageRef("broken", broken), ImageRef("missing", tmp_path / "nope.png"),
            ImageRef("ok1", parity_images[1])]
    item = Item("x", "a red circle", refs, [1, 2, 3, 4])
    [res] = build_scorer(name, tiny_encoders).score_batch([(item, [0, 1, 2, 3])])
    assert [res[k].status for k in range(4)] == ["ok", "error", "error", "ok"]
    assert res[1].score is None and "broken.png" in res[1].error


def test_pickscore_is_logit_scale_times_clip_cosine(tiny_encoders, parity_images):
    skip_without_extra("pickscore")
    clip = build_scorer("clip", tiny_encoders, preprocess="processor")
    pick = build_scorer("pickscore", tiny_encoders)
    clip.setup()
    scale = float(clip._model.logit_scale.detach().exp())
    assert scale > 1.5  # CLIP's initial temperature is 1/0.07
    got_clip = score_cases(clip, cases(parity_images))
    got_pick = score_cases(pick, cases(parity_images))
    for c, p in zip(got_clip, got_pick, strict=True):
        assert p == pytest.approx([scale * x for x in c], abs=1e-4)


def test_clip_and_processor_preprocessing_agree_where_their_crops_round_alike(tiny_encoders, parity_images):
    """OpenAI's transform and transformers' processor agree on images whose crop margins are even."""
    skip_without_extra("clip")
    from PIL import Image

    scorer = build_scorer("clip", tiny_encoders)
    scorer.setup()
    ip = scorer._image_processor
    from prefbench.scorers.encoders._common import clip_transform

    for path in parity_images:
        img = Image.open(path).convert("RGB")
        a = clip_transform(img, ip.crop_size["height"], ip.image_mean, ip.image_std)
        b = ip(images=img, return_tensors="pt")["pixel_values"][0]
        assert a.shape == b.shape
        w, h = img.size
        short = ip.crop_size["height"]
        long_side = int(short * max(w, h) / min(w, h))
        if (long_side - short) % 2 == 0 or (long_side - short) % 4 == 1:
            assert (a - b).abs().max() < 1e-5, path.name


def test_weights_are_never_unpickled(tiny_encoders, tmp_path):
    """A checkpoint holding a Python object (not only tensors) is refused, not executed."""
    skip_without_extra("aesthetic")
    import shutil

    import torch

    from prefbench.weights import WeightsError

    folder = tmp_path / "aesthetic"
    shutil.copytree(tiny_encoders / "aesthetic", folder)
    head = folder / "sac+logos+ava1-l14-linearMSE.pth"
    sd = torch.load(head, weights_only=True)
    torch.save({**sd, "payload": _Payload()}, head)
    scorer = build_scorer("aesthetic", tmp_path)
    with pytest.raises(WeightsError, match="cannot read"):
        scorer.setup()
    assert not _Payload.unpickled


class _Payload:
    unpickled = False

    def __setstate__(self, state):
        type(self).unpickled = True


@pytest.mark.parametrize("name, folder_file", [("hpsv2", "HPS_v2.1_compressed.pt"), ("imagereward", "ImageReward.pt"),
                                               ("aesthetic", "sac+logos+ava1-l14-linearMSE.pth")])
def test_missing_weights_name_the_file(name, folder_file, tmp_path):
    skip_without_extra(name)
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli(["run", "--scorer", name, "--model", empty, "--dataset", "demo", "--limit", "2", "--out",
                    tmp_path / "run", "-S", "device=cpu"], env_extra=OFFLINE, timeout=900)
    assert proc.returncode != 0
    assert folder_file in proc.stderr, proc.stderr


@pytest.mark.parametrize("name, hint", [("clip", "openai/clip-vit-large-patch14"), ("hpsv2", "HPS_v2.1_compressed.pt"),
                                        ("imagereward", "ImageReward.pt")])
def test_offline_hub_default_says_what_to_download(name, hint, tmp_path):
    skip_without_extra(name)
    # not the demo dataset: there `clip` defaults to the bundled demo checkpoint, not the hub id
    from PIL import Image

    for k in range(2):
        Image.new("RGB", (8, 8), (k * 100, 0, 0)).save(tmp_path / f"{k}.png")
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt_id": "p", "prompt": "x", "images": ["0.png", "1.png"], "ranks": [1, 2]}\n')
    proc = run_cli(["run", "--scorer", name, "--dataset", "jsonl", "--data-dir", data, "--out", tmp_path / "run",
                    "-S", "device=cpu"], env_extra={**OFFLINE, "HF_HOME": str(tmp_path / "hf")}, timeout=900)
    assert proc.returncode != 0
    assert hint in proc.stderr and "download" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_imagereward_key_mapping_round_trips(tiny_encoders):
    skip_without_extra("imagereward")
    import torch

    from prefbench.scorers.encoders.imagereward import map_official_keys, official_keys

    sd = torch.load(tiny_encoders / "imagereward" / "ImageReward.pt", weights_only=True)
    assert any(k.startswith("blip.visual_encoder.blocks.1.attn.qkv") for k in sd)
    mapped, ignored = map_official_keys({**sd, "blip.vision_proj.weight": torch.zeros(1)})
    assert ignored == ["blip.vision_proj.weight"]
    assert official_keys(mapped).keys() == sd.keys()


def test_bad_options_are_usage_errors(tmp_path):
    skip_without_extra("hpsv2")
    skip_without_extra("clip")
    proc = run_cli(["run", "--scorer", "hpsv2", "-S", "version=v3", "--dataset", "demo", "--out", tmp_path / "r"])
    assert proc.returncode == 2 and "version must be one of" in proc.stderr
    proc = run_cli(["run", "--scorer", "clip", "-S", "dtype=float8", "--dataset", "demo", "--out", tmp_path / "r"])
    assert proc.returncode == 2 and "dtype must be one of" in proc.stderr


def test_speed_benchmark_script_runs_on_cpu(tmp_path):
    """benchmarks/encoders_speed.py (GPU numbers come from a lent card): a tiny CPU run, ours only."""
    skip_without_extra("clip")
    from tests.fixtures.cli import REPO

    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "encoders_speed.py"), "--shape", "tiny", "--device",
                           "cpu", "--only", "clip,imagereward", "--images", "8", "--per-prompt", "4", "--image-size", "64",
                           "--batch", "4", "--workers", "2", "--work", str(tmp_path / "work"), "--reference-python",
                           str(tmp_path / "none"), "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [r["baseline"] for r in report["rows"]] == ["clip", "imagereward"]
    for row in report["rows"]:
        assert row["ours"]["images"] == 8 and row["ours"]["images_per_s"] > 0
        assert len(row["ours"]["scores"]) == 2 and all(isinstance(x, float) for x in row["ours"]["scores"][0])
        assert "no reference venv" in row["reference"]["error"]
