"""Fixtures for the encoder baseline tests: tiny checkpoints built once per session and a set
of images whose sizes exercise every resize/crop/pad path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from prefbench.data.model import ImageRef, Item

ALL = ("clip", "pickscore", "aesthetic", "hpsv2", "imagereward")
#: which tiny folder each scorer loads
FOLDER = {"clip": "clip", "pickscore": "clip", "aesthetic": "aesthetic", "hpsv2": "hpsv2", "imagereward": "imagereward"}
#: (width, height): square, odd/even crop margins both ways, upscaling, already at model size
IMAGE_SIZES = [(112, 112), (97, 61), (300, 203), (64, 131), (224, 224), (57, 57), (50, 80)]
PROMPTS = ["two red circles on a grey background", "a blue square left of a yellow triangle",
           "A photo of a Cat, detailed, high quality!"]


def needs(name: str):
    """Skip (visibly) when a scorer's extra is not installed."""
    module = "open_clip" if name == "hpsv2" else "transformers"
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{name}: {module} not installed (pip install 'prefbench[{name}]')")


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory) -> Path:
    """OUT/<clip|aesthetic|hpsv2|imagereward>, built with the users' command."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from prefbench.testing.tiny_encoders import main

    out = tmp_path_factory.mktemp("tiny_encoders")
    only = "clip,aesthetic,imagereward" + (",hpsv2" if importlib.util.find_spec("open_clip") else "")
    assert main([str(out), "--only", only]) == 0
    return out


@pytest.fixture(scope="session")
def parity_images(tmp_path_factory) -> list[Path]:
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("parity_images")
    rng = np.random.default_rng(7)
    paths = []
    for i, (w, h) in enumerate(IMAGE_SIZES):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1)
        noise = rng.integers(-40, 40, size=(h, w, 3))
        arr = np.clip(base + noise, 0, 255).astype("uint8")
        arr[h // 4: h // 2, w // 5: w // 2] = [(40 * i) % 256, 200, 30]
        path = root / f"img{i}_{w}x{h}.png"
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths


def cases(images: list[Path]) -> list[dict]:
    """Prompt + image lists as the reference script takes them (every image in some case)."""
    return [{"prompt": PROMPTS[0], "images": [str(p) for p in images[:3]]},
            {"prompt": PROMPTS[1], "images": [str(p) for p in images[3:]]},
            {"prompt": PROMPTS[2], "images": [str(images[0]), str(images[4])]}]


def score_cases(scorer, case_list: list[dict]) -> list[list[float]]:
    """Our scores for the same cases, through the scorer's batched path."""
    tasks = []
    for i, case in enumerate(case_list):
        refs = [ImageRef(Path(p).name, Path(p)) for p in case["images"]]
        tasks.append((Item(f"case{i}", case["prompt"], refs, [1] * len(refs)), list(range(len(refs)))))
    results = scorer.score_batch(tasks)
    out = []
    for (_, indices), res in zip(tasks, results, strict=True):
        assert all(res[k].status == "ok" for k in indices), res
        out.append([res[k].score for k in indices])
    return out


def build_scorer(name: str, folder: Path, **params):
    from prefbench.registry import build

    scorer, _ = build(name, {"model": str(folder / FOLDER[name]), "device": "cpu", **params})
    return scorer
