"""The demo world: a synthetic text-to-image preference benchmark whose truth we control.

Generated offline and deterministically from a seed (no binary data is needed to regenerate
it). Prompts come from a small grammar, either ``count x colour x shape x background``
("two red circles on a grey background") or a spatial relation between two objects ("a red
circle left of a blue square on a white background"). Each prompt gets 4 to 6 candidate
images, 112 x 112, drawn with PIL, that differ in

- prompt alignment: wrong colour (-1.0), wrong shape (-1.0), wrong count (-0.7), relation
  swapped (-0.8);
- quality: blur (-0.25 per unit of radius), noise (-sigma / 40), heavy JPEG compression (-0.5),
  over-exposure clipping (-0.6), low contrast (-0.5).

The latent utility is the sum of those terms. Simulated annotators see
``utility + N(0, 0.45)`` on a half-point scale, and equal judgements are ties, so human ties exist
and even the noise-free utility falls well short of 100% (the *ceiling*, measured by the
``demo_oracle`` scorer and printed by ``python -m prefbench.data.demo``).

Splits: ``train`` (400 prompts), ``test`` (300, the standard split) and ``ood`` (60 prompts whose
(colour, shape) pairs never occur in train/test prompts). Files are written once to
``$PREFBENCH_CACHE/demo-v4-<seed>/`` (default ``~/.cache/prefbench``) and reused.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from prefbench.data.model import ImageRef, Item, Split
from prefbench.data.spec import DatasetSpec

#: registered by the distribution's own entry point (pyproject.toml, ``prefbench.datasets``), as a
#: plugin's dataset is: no core module names the demo world
SPEC = DatasetSpec(
    "demo", ("test", "train", "ood"), "imagereward", "prefbench.data.demo",
    "synthetic preference world generated offline from a seed: known truth, 4-6 images per prompt",
    needs_data_dir=False, rating_rows="prefbench.data.demo:rating_rows",
)

VERSION = "demo-v4"
SEED = 20250325
#: prompts per split. ``test`` was 100 prompts until demo-v4; with 100 prompt clusters a 95% CI
#: spans about +-0.045, too wide to tell apart scorers 0.05-0.08 apart, so it was enlarged to 300
#: (ImageReward's own test split has 466 prompts). Each split has its own random stream, so the
#: first 100 test prompts, and train and ood, are unchanged.
SPLIT_SIZES = {"train": 400, "test": 300, "ood": 60}
SIZE = 112
ANNOTATOR_NOISE = 0.45

COLOURS = {
    "red": (215, 40, 40), "green": (40, 160, 60), "blue": (45, 80, 215),
    "yellow": (235, 205, 35), "purple": (135, 60, 175), "orange": (240, 135, 30),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS = {"white": (245, 245, 245), "black": (25, 25, 25), "grey": (128, 128, 128), "beige": (225, 210, 175)}
COUNTS = {1: "one", 2: "two", 3: "three"}
RELATIONS = ("left of", "above")
# (colour, shape) pairs that never appear in train/test prompts: the ood split's prompts use them.
OOD_PAIRS = {("yellow", "triangle"), ("green", "square"), ("purple", "circle"), ("orange", "square")}

PENALTY = {"colour": 1.0, "shape": 1.0, "count": 0.7, "relation": 0.8,
           "jpeg": 0.5, "clipping": 0.6, "low_contrast": 0.5}


def cache_root() -> Path:
    return Path(os.environ.get("PREFBENCH_CACHE", Path.home() / ".cache" / "prefbench"))


def _shape(draw, shape: str, box: tuple[int, int, int, int], colour: str) -> None:
    x0, y0, x1, y1 = box
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x0, y1), (x1, y1)], fill=fill)


def _degrade(img, rng: np.random.Generator, spec: dict):
    from PIL import Image, ImageEnhance, ImageFilter

    if spec["blur"]:
        img = img.filter(ImageFilter.GaussianBlur(spec["blur"]))
    if spec["low_contrast"]:
        img = ImageEnhance.Contrast(img).enhance(0.35)
    if spec["clipping"]:
        img = ImageEnhance.Brightness(img).enhance(1.9)
    if spec["noise"]:
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0, spec["noise"], (SIZE, SIZE, 3))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if spec["jpeg"]:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=6)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def _render(rng: np.random.Generator, scene: dict, quality: dict):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (SIZE, SIZE), BACKGROUNDS[scene["background"]])
    draw = ImageDraw.Draw(img)
    jitter = lambda: int(rng.integers(-4, 5))  # noqa: E731
    if scene["kind"] == "relation":
        a, b = scene["a"], scene["b"]
        first, second = (a, b) if not scene["swapped"] else (b, a)
        if scene["relation"] == "left of":
            boxes = [(14, 38), (62, 38)]
        else:
            boxes = [(38, 12), (38, 62)]
        for (colour, shape), (x, y) in zip((first, second), boxes):
            x, y = x + jitter(), y + jitter()
            _shape(draw, shape, (x, y, x + 34, y + 34), colour)
    else:
        slots = [(12, 12), (62, 12), (12, 62), (62, 62)]
        for k in rng.permutation(len(slots))[: scene["count"]]:
            x, y = slots[k][0] + jitter(), slots[k][1] + jitter()
            _shape(draw, scene["shape"], (x, y, x + 36, y + 36), scene["colour"])
    return _degrade(img, rng, quality)


def _prompt(rng: np.random.Generator, split: str) -> dict:
    def pair():
        while True:
            c, s = str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))
            if ((c, s) in OOD_PAIRS) == (split == "ood"):
                return c, s

    bg = str(rng.choice(list(BACKGROUNDS)))
    if rng.random() < 0.3:
        a = pair()
        while True:
            b = (str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)))
            if b != a and (b not in OOD_PAIRS or split == "ood"):
                break
        rel = str(rng.choice(RELATIONS))
        text = f"a {a[0]} {a[1]} {rel} a {b[0]} {b[1]} on a {bg} background"
        return {"kind": "relation", "a": a, "b": b, "relation": rel, "background": bg, "text": text}
    colour, shape = pair()
    count = int(rng.integers(1, 4))
    noun = shape + ("s" if count > 1 else "")
    text = f"{COUNTS[count]} {colour} {noun} on a {bg} background"
    return {"kind": "count", "colour": colour, "shape": shape, "count": count, "background": bg, "text": text}


def _candidate(rng: np.random.Generator, prompt: dict) -> tuple[dict, dict, float, list[str]]:
    """A scene that may deviate from the prompt, a quality spec, its utility and its flaws."""
    scene = {k: v for k, v in prompt.items() if k != "text"}
    utility, flaws = 0.0, []

    def other(options, current):
        return str(rng.choice([o for o in options if o != current]))

    if prompt["kind"] == "relation":
        scene["swapped"] = False
        a, b = list(scene["a"]), list(scene["b"])
        if rng.random() < 0.3:
            a[0] = other(COLOURS, a[0])
            utility -= PENALTY["colour"]
            flaws.append("colour")
        if rng.random() < 0.25:
            b[1] = other(SHAPES, b[1])
            utility -= PENALTY["shape"]
            flaws.append("shape")
        if rng.random() < 0.35:
            scene["swapped"] = True
            utility -= PENALTY["relation"]
            flaws.append("relation")
        scene["a"], scene["b"] = tuple(a), tuple(b)
    else:
        if rng.random() < 0.3:
            scene["colour"] = other(COLOURS, scene["colour"])
            utility -= PENALTY["colour"]
            flaws.append("colour")
        if rng.random() < 0.25:
            scene["shape"] = other(SHAPES, scene["shape"])
            utility -= PENALTY["shape"]
            flaws.append("shape")
        if rng.random() < 0.3:
            scene["count"] = int(rng.choice([c for c in COUNTS if c != scene["count"]]))
            utility -= PENALTY["count"]
            flaws.append("count")
    quality = {
        "blur": float(rng.choice([0.0, 0.0, 0.0, 1.2, 2.5])),
        "noise": float(rng.choice([0.0, 0.0, 0.0, 10.0, 25.0])),
        "jpeg": bool(rng.random() < 0.15),
        "clipping": bool(rng.random() < 0.12),
        "low_contrast": bool(rng.random() < 0.12),
    }
    utility -= 0.25 * quality["blur"] + quality["noise"] / 40.0
    for key in ("jpeg", "clipping", "low_contrast"):
        if quality[key]:
            utility -= PENALTY[key]
            flaws.append(key)
    if quality["blur"]:
        flaws.append("blur")
    if quality["noise"]:
        flaws.append("noise")
    return scene, quality, round(utility, 4), flaws


QUALITY_WORDS = {"blur": "blurry", "noise": "noisy", "jpeg": "compressed", "clipping": "overexposed",
                 "low_contrast": "low contrast"}


def describe(scene: dict, flaws: list[str]) -> str:
    """What an image actually shows, in the prompt grammar, plus its quality defects.

    Used as the caption target when pre-training the demo's base VLM (``prefbench.demo_zoo``).
    """
    if scene["kind"] == "relation":
        first, second = (scene["a"], scene["b"]) if not scene["swapped"] else (scene["b"], scene["a"])
        text = f"a {first[0]} {first[1]} {scene['relation']} a {second[0]} {second[1]}"
    else:
        noun = scene["shape"] + ("s" if scene["count"] > 1 else "")
        text = f"{COUNTS[scene['count']]} {scene['colour']} {noun}"
    quality = [QUALITY_WORDS[f] for f in flaws if f in QUALITY_WORDS]
    return f"{text} on a {scene['background']} background, " + (", ".join(quality) if quality else "clean and sharp")


def _generate(split: str, seed: int, out: Path) -> list[dict]:
    rng = np.random.default_rng([seed, list(SPLIT_SIZES).index(split)])
    records = []
    for p in range(SPLIT_SIZES[split]):
        prompt = _prompt(rng, split)
        n = int(rng.integers(4, 7))
        files, utility, flaws, captions = [], [], [], []
        for i in range(n):
            scene, quality, u, f = _candidate(rng, prompt)
            name = f"{split}/{p:04d}_{i}.png"
            _render(rng, scene, quality).save(out / name)
            files.append(name)
            utility.append(u)
            flaws.append(f)
            captions.append(describe(scene, f))
        noisy = np.asarray(utility) + rng.normal(0, ANNOTATOR_NOISE, n)
        levels = np.round(noisy * 2) / 2  # half-point judgements: equal levels are ties
        ranks = [int(1 + np.sum(levels > lv)) for lv in levels]
        records.append({"prompt_id": f"{split}-{p:04d}", "prompt": prompt["text"], "images": files,
                        "ranks": ranks, "utility": utility, "flaws": flaws, "captions": captions})
    return records


#: flaws that break prompt alignment; the others in ``_candidate``'s flaw lists are quality defects
ALIGNMENT_FLAWS = ("colour", "shape", "count", "relation")


def scene_pairs(seed: int, split: str = "train"):
    """An endless stream of fresh prompts, each with two candidate images drawn like ``split``'s.

    Each item is ``{"prompt": text, "candidates": [(PIL image, caption, flaws), (..., ..., ...)]}``:
    what the prompt asked for, and for each image what it actually shows (``describe``) and which
    of the generator's deviations it has (``ALIGNMENT_FLAWS`` or quality defects). It has its own
    random stream, so none of its images is a benchmark image, and it carries no rankings or
    utilities: the demo's stand-in for a VLM's pre-training data (``prefbench.demo_zoo.pretrain``).
    """
    rng = np.random.default_rng([seed, 2000 + list(SPLIT_SIZES).index(split)])
    while True:
        prompt = _prompt(rng, split)
        cands = []
        for _ in range(2):
            scene, quality, _, flaws = _candidate(rng, prompt)
            cands.append((_render(rng, scene, quality), describe(scene, flaws), list(flaws)))
        yield {"prompt": prompt["text"], "candidates": cands}


def ensure_generated(seed: int = SEED, split: str | None = None) -> Path:
    """Generate ``split`` (every split when None) once into the cache; return the world's folder.

    Each split has its own random stream, so one split can be generated without the others
    (the test split alone is 40% of the images) and gives the same files as when all are.
    """
    root = cache_root() / f"{VERSION}-{seed}"
    splits = list(SPLIT_SIZES) if split is None else [split]
    if all(_ready(root, s) for s in splits):
        return root
    root.mkdir(parents=True, exist_ok=True)
    with _generation_lock(root):  # a second process waits for the first instead of generating too
        for s in splits:
            if not _ready(root, s):
                _generate_split(root, s, seed)
    return root


def _ready(root: Path, split: str) -> bool:
    # "done": a world generated whole (the layout before splits were generated one by one)
    return (root / "done").is_file() or (root / f"{split}.done").is_file()


@contextlib.contextmanager
def _generation_lock(root: Path):
    try:
        import fcntl
    except ImportError:  # no flock on this platform: generate unlocked
        yield
        return
    with open(root.parent / f".{root.name}.lock", "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


def _generate_split(root: Path, split: str, seed: int) -> None:
    """Generate into a temporary folder, then move the images, the annotation and last the
    marker into place (a process killed half-way leaves no marker, so the split is redone)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{split}-", dir=root))
    try:
        (tmp / split).mkdir()
        records = _generate(split, seed, tmp)
        with (tmp / f"{split}.jsonl").open("w") as fh:
            for rec in records:
                fh.write(json.dumps(rec) + "\n")
        if (root / split).exists():  # left by an attempt that did not finish
            shutil.rmtree(root / split)
        os.replace(tmp / split, root / split)
        os.replace(tmp / f"{split}.jsonl", root / f"{split}.jsonl")
        (root / f"{split}.done").write_text(VERSION + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(split: str, data_dir: Path | None = None, with_images: bool = True) -> Split:
    root = data_dir or ensure_generated(split=split)
    items = []
    for line in (root / f"{split}.jsonl").read_text().splitlines():
        rec = json.loads(line)
        refs = [ImageRef(key=f, path=root / f) for f in rec["images"]]
        items.append(Item(rec["prompt_id"], rec["prompt"], refs, rec["ranks"],
                          meta={"utility": rec["utility"], "flaws": rec["flaws"], "captions": rec["captions"]}))
    return Split("demo", split, "imagereward", items, source=str(root), root=root,
                 note="synthetic demo world (prefbench.data.demo), not a real benchmark")


def quantile_ratings(utilities, rating_min: int, rating_max: int) -> list[int]:
    """Ratings from latent utilities: equal-count quantile bins, lowest bin = ``rating_min``.

    >>> quantile_ratings([0.0, -1.0, -2.0, -3.0, -0.5, -2.5], 1, 3)
    [3, 2, 2, 1, 3, 1]
    """
    u = np.asarray(utilities, dtype=float)
    k = rating_max - rating_min + 1
    edges = np.quantile(u, np.linspace(0, 1, k + 1)[1:-1])
    return [int(rating_min + b) for b in np.searchsorted(edges, u, side="right")]


def rating_rows(split: str, data_dir: Path | None, rating_min: int, rating_max: int):
    """The rating task's rows (``prefbench train --task rating --dataset demo``): each image's target
    is its latent utility's quantile bin over all images of the split, K = rating_max -
    rating_min + 1 equal-count bins, the lowest bin rated ``rating_min``. Deterministic given the
    split, independent of the utility's units, and it uses the whole scale."""
    from prefbench.data.ratings import RatingRow, RatingRows

    data = load(split, data_dir)
    ratings = iter(quantile_ratings([u for item in data.items for u in item.meta["utility"]], rating_min, rating_max))
    rows = [RatingRow(item.item_id, f"{item.item_id}/{k}", item.prompt, ref, next(ratings))
            for item in data.items for k, ref in enumerate(item.images)]
    return RatingRows(rows, data.source, data.root)


def ceiling(split: str = "test") -> dict:
    """Accuracy of the noise-free utility under the split's convention (with its CI)."""
    from prefbench.metrics import accuracy_for

    data = load(split)
    scores = {(it.item_id, k): u for it in data.items for k, u in enumerate(it.meta["utility"])}
    metrics, _ = accuracy_for(data, scores)
    return metrics


if __name__ == "__main__":
    for name in SPLIT_SIZES:
        m = ceiling(name)
        print(f"{name:<6} noise-free utility accuracy {m['accuracy']:.4f} "
              f"[{m['ci_low']:.4f}, {m['ci_high']:.4f}]  ({m['n_prompts']} prompts, {m['n_pairs']} pairs)")
