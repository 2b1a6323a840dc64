"""The demo split: a synthetic shapes world generated offline, deterministically, from a seed.

It exists so that a new user's first command runs end to end with no downloads. It is a
smoke-test set, not a benchmark: prompts come from a tiny grammar ("two red circles on a blue
background"); each prompt gets 4 candidate images drawn with PIL that differ in prompt
alignment (wrong colour, shape or count) and quality (blur, noise). Human ranks come from a
latent utility (alignment + quality) plus simulated annotator noise, rounded so that ties exist.

Images are written once to ``$PREFBENCH_CACHE/demo-v1-<seed>/`` (default
``~/.cache/prefbench``) and reused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from prefbench.data.model import ImageRef, Item, Split

VERSION = "demo-v1"
SEED = 20250325
SPLIT_SIZES = {"train": 200, "test": 60, "ood": 30}
IMAGES_PER_PROMPT = 4
SIZE = 64

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 80, 220), "yellow": (235, 210, 40)}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS = {"white": (245, 245, 245), "black": (20, 20, 20), "grey": (128, 128, 128)}
COUNTS = {1: "one", 2: "two", 3: "three"}
# (colour, shape) pairs that never appear in train/test prompts, kept for the ood split.
OOD_PAIRS = {("yellow", "triangle"), ("green", "square")}


def cache_root() -> Path:
    return Path(os.environ.get("PREFBENCH_CACHE", Path.home() / ".cache" / "prefbench"))


def _draw(rng: np.random.Generator, colour: str, shape: str, count: int, bg: str, blur: float, noise: float):
    from PIL import Image, ImageDraw, ImageFilter

    img = Image.new("RGB", (SIZE, SIZE), BACKGROUNDS[bg])
    draw = ImageDraw.Draw(img)
    slots = [(8, 8), (36, 8), (8, 36), (36, 36)]
    for k in rng.permutation(len(slots))[:count]:
        x, y = slots[k]
        x, y = x + int(rng.integers(-3, 4)), y + int(rng.integers(-3, 4))
        box = (x, y, x + 20, y + 20)
        if shape == "circle":
            draw.ellipse(box, fill=COLOURS[colour])
        elif shape == "square":
            draw.rectangle(box, fill=COLOURS[colour])
        else:
            draw.polygon([(x + 10, y), (x, y + 20), (x + 20, y + 20)], fill=COLOURS[colour])
    if blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    if noise > 0:
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0, noise, (SIZE, SIZE, 3))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img


def _prompt_text(colour: str, shape: str, count: int, bg: str) -> str:
    noun = shape + ("s" if count > 1 else "")
    return f"{COUNTS[count]} {colour} {noun} on a {bg} background"


def _generate(split: str, seed: int, out: Path) -> list[dict]:
    rng = np.random.default_rng([seed, list(SPLIT_SIZES).index(split)])
    records = []
    for p in range(SPLIT_SIZES[split]):
        while True:
            colour = str(rng.choice(list(COLOURS)))
            shape = str(rng.choice(SHAPES))
            if ((colour, shape) in OOD_PAIRS) == (split == "ood"):
                break
        count = int(rng.integers(1, 4))
        bg = str(rng.choice(list(BACKGROUNDS)))
        files, utility = [], []
        for i in range(IMAGES_PER_PROMPT):
            c, s, n = colour, shape, count
            u = 0.0
            if rng.random() < 0.35:
                c = str(rng.choice([x for x in COLOURS if x != colour]))
                u -= 1.0
            if rng.random() < 0.3:
                s = str(rng.choice([x for x in SHAPES if x != shape]))
                u -= 1.0
            if rng.random() < 0.3:
                n = int(rng.choice([x for x in COUNTS if x != count]))
                u -= 0.6
            blur = float(rng.choice([0.0, 0.0, 1.0, 2.5]))
            noise = float(rng.choice([0.0, 0.0, 12.0, 30.0]))
            u -= 0.25 * blur + noise / 40.0
            name = f"{split}/{p:04d}_{i}.png"
            _draw(rng, c, s, n, bg, blur, noise).save(out / name)
            files.append(name)
            utility.append(u)
        noisy = np.asarray(utility) + rng.normal(0, 0.35, len(utility))
        levels = np.round(noisy * 2) / 2  # coarse judgements: equal levels are ties
        ranks = [int(1 + np.sum(levels > lv)) for lv in levels]
        records.append({
            "prompt_id": f"{split}-{p:04d}", "prompt": _prompt_text(colour, shape, count, bg),
            "images": files, "ranks": ranks, "utility": [round(u, 4) for u in utility],
        })
    return records


def ensure_generated(seed: int = SEED) -> Path:
    """Generate every split once into the cache; return its folder."""
    root = cache_root() / f"{VERSION}-{seed}"
    if (root / "done").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{VERSION}-", dir=root.parent))
    try:
        for split in SPLIT_SIZES:
            (tmp / split).mkdir()
            records = _generate(split, seed, tmp)
            with (tmp / f"{split}.jsonl").open("w") as fh:
                for rec in records:
                    fh.write(json.dumps(rec) + "\n")
        (tmp / "done").write_text(VERSION + "\n")
        try:
            tmp.rename(root)
        except OSError:  # another process finished first
            if not (root / "done").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def load(split: str, data_dir: Path | None = None, with_images: bool = True) -> Split:
    root = data_dir or ensure_generated()
    items = []
    for line in (root / f"{split}.jsonl").read_text().splitlines():
        rec = json.loads(line)
        refs = [ImageRef(key=f, path=root / f) for f in rec["images"]]
        items.append(Item(rec["prompt_id"], rec["prompt"], refs, rec["ranks"], meta={"utility": rec["utility"]}))
    return Split("demo", split, "imagereward", items, source=str(root),
                 note="synthetic smoke-test data, not a benchmark")
