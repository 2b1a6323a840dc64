"""Datasets: one loader per dataset, all returning a :class:`Split` of :class:`Item`.

Nothing here touches the network. A split whose files are missing raises
:class:`~prefbench.errors.MissingDataError` naming the files to provide and where.

The built-in datasets are :data:`DATASETS`. A package adds one by declaring a
:class:`DatasetSpec` under the ``prefbench.datasets`` entry-point group (the registry's one
mechanism: built-in names win a clash, a broken plugin is a warning); its ``module`` has a
``load(split=, data_dir=, with_images=)`` function like the built-in loaders.

The spec also says what ``prefbench train`` may do with the dataset (:func:`training_spec`):
whether it may train at all (``trainable``, ``train_note``), which splits each task reads
(``train_splits``), and which reader gives the rating task its per-image ratings
(``rating_rows``, see :mod:`prefbench.data.ratings`). The trainer reads datasets through these
fields alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from prefbench.data.model import ImageRef, Item, Split
from prefbench.errors import UsageError


@dataclass(frozen=True)
class Download:
    """Where a dataset's files live on the hub and which of them a split needs.

    ``patterns``: ``{split: [glob, ...]}`` (``{split}`` in a glob is the split's name; the key
    ``"*"`` serves every split); ``archives``: globs of downloaded files to unpack into the data
    dir (zip or tar, confined like every path); ``note``: what the files are, said offline too;
    ``github``: ``{split: (PinnedFile, ...)}``, files a split needs from a GitHub repository at a
    verified commit and sha256 (:class:`prefbench.pinned.PinnedFile`), fetched beside the hub's."""

    repo_id: str
    patterns: dict[str, tuple[str, ...]]
    archives: tuple[str, ...] = ()
    repo_type: str = "dataset"
    note: str = ""
    github: dict[str, tuple] = field(default_factory=dict)

    def for_split(self, split: str) -> list[str]:
        globs = self.patterns.get(split) or self.patterns.get("*") or ()
        return [g.replace("{split}", split) for g in globs]


#: ImageReward's official test annotation, data/test.json of github.com/THUDM/ImageReward at c1392c6
#: (its size and sha256 read from that commit's file; identical to ../shared/data/imagereward/test.json)
def _imagereward_test_json():
    from prefbench.pinned import PinnedFile

    return PinnedFile("github:THUDM/ImageReward", ("data/test.json",), revision="c1392c6dd0fd6ecd6d416c96959ab744a6d0a8fb",
                      sha256="77cff6c2d0522006f52f0b637ef8302db1782b2b761e378c124a012a3c7fc58e", size=391362,
                      dest="test.json")


IMAGEREWARD_TEST_JSON = _imagereward_test_json()

#: the tasks of ``prefbench train``
TRAIN_TASKS = ("rating", "pairwise")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its splits, the accuracy convention its papers report, the module whose
    ``load(split=, data_dir=, with_images=)`` reads it (or ``"module:function"`` naming the loader,
    so that one module can serve several datasets), and what its items are (``ranked``: a prompt
    with a ranked list of images; ``pair``: two images and a preference; ``pointwise``: images
    with human scores).

    What ``prefbench train`` may do with it:

    - ``rating_rows``: the reader of per-image ratings for the rating task,
      ``fn(split, data_dir, rating_min, rating_max) -> RatingRows`` (:mod:`prefbench.data.ratings`),
      as ``"module:function"`` (imported when used) or the function itself; None = the dataset
      cannot train the rating task. The pairwise task needs no hook: it reads ``load``'s ranks.
    - ``train_splits``: ``{task: splits}`` the trainer may read, ``"*"`` for any split name (a
      file the user names). A task not listed reads ``splits`` (rating: only with ``rating_rows``).
    - ``trainable``: False refuses every task, with ``train_note`` (a licence, say) as the reason.
    - ``rating_scale``: the native scale of ``rating_rows``' ratings, if it has one.
    """

    name: str
    splits: tuple[str, ...]
    convention: str
    module: str
    description: str
    needs_data_dir: bool = True
    default_split: str = "test"
    kind: str = "ranked"
    source: str = "builtin"
    download: Download | None = None
    rating_rows: str | Callable | None = None
    train_splits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    trainable: bool = True
    train_note: str = ""
    rating_scale: tuple[int, int] | None = None

    def training_splits(self, task: str) -> tuple[str, ...]:
        """The splits ``task`` may read (``("*",)``: any name; ``()``: the task cannot use this dataset)."""
        if not self.trainable or (task == "rating" and self.rating_rows is None):
            return ()
        if task in self.train_splits:
            return tuple(self.train_splits[task])
        return self.splits

    def loader(self) -> Callable:
        """The ``load(split=, data_dir=, with_images=)`` function ``module`` names."""
        from prefbench.registry import import_target

        return import_target(self.module, "load")

    def rating_reader(self) -> Callable:
        """The rating reader ``rating_rows`` names (a UsageError when it names none)."""
        hook = self.rating_rows
        if hook is None:
            raise UsageError(f"dataset {self.name!r} has no rating reader")
        if callable(hook):
            return hook
        from prefbench.registry import import_target

        if ":" not in hook:
            raise UsageError(f"dataset {self.name!r}: rating_rows must be 'module:function', got {hook!r}")
        return import_target(hook)


#: the name the spec had before plugins could provide one
DatasetInfo = DatasetSpec
ENTRY_POINT_GROUP = "prefbench.datasets"


DATASETS: dict[str, DatasetInfo] = {
    "imagereward": DatasetInfo(
        "imagereward", ("test",), "imagereward", "prefbench.data.imagereward",
        "ImageReward test: 466 prompts, 2,720 images, human ranks with ties (Xu et al. 2023)",
        # ImageReward's README (c1392c6): data/test.json in the GitHub repository, the images as
        # test_images.zip in the hub model repository THUDM/ImageReward, unpacked to test_images/
        download=Download("THUDM/ImageReward", {"test": ("test_images.zip",)}, archives=("*.zip",), repo_type="model",
                          github={"test": (IMAGEREWARD_TEST_JSON,)},
                          note="test.json from the GitHub repository THUDM/ImageReward at c1392c6 (sha256 checked); "
                               "test_images.zip from the hub model repository, to be unpacked so that "
                               "test_images/<generation path> exists (its member layout is not verified)"),
        rating_rows="prefbench.data.imagereward:rating_rows", rating_scale=(1, 7),
        train_splits={"rating": ("train", "validation", "test")},  # ImageRewardDB's metadata files
    ),
    "hpdv2": DatasetInfo(
        "hpdv2", ("test", "train"), "hpdv2", "prefbench.data.hpdv2",
        "HPDv2 test: 400 prompts x 9 images, ranked (Wu et al. 2023); train: preference pairs",
        # HPSv2's README (866735e) links test.json in the dataset repository zhwang/HPDv2; the name
        # of its test image archive is our reading, not verified
        download=Download("zhwang/HPDv2", {"test": ("test.json", "test.tar.gz", "test.zip")},
                          archives=("*.tar.gz", "*.zip"),
                          note="test.json and the test images' archive (unpacked so that test/<image> exists); "
                               "the archive's name is not verified"),
    ),
    "pickapic": DatasetInfo(
        "pickapic", ("test", "test_unique", "validation_unique"), "pickapic", "prefbench.data.pickapic",
        "Pick-a-Pic: image pairs with label_0 in {0, 0.5, 1} (Kirstain et al. 2023)", kind="pair",
        # PickScore (f79607f) evaluates yuvalkirstain/pickapic_v1's test_unique / validation_unique;
        # the shard names are the hub's parquet layout, not verified
        download=Download("yuvalkirstain/pickapic_v1", {"*": ("data/{split}-*.parquet",)},
                          note="the split's parquet shards, images inside (the full test split is large)"),
    ),
    "hpdv3": DatasetInfo(
        "hpdv3", ("test",), "hpdv3", "prefbench.data.hpdv3",
        "HPDv3 test pairs (HPSv3, Ma et al. 2025): path1 is the preferred image", kind="pair",
        # the images ship only as one split tar archive of the whole set (images.tar.gz.00, .01, ...;
        # 1.08M images per the HPSv3 README): the test pairs need it all
        download=Download("MizzenAI/HPDv3", {"*": ("{split}.json", "images.tar.gz.*")}, archives=("images.tar.gz.*",),
                          note="the split's JSON and the image archive parts images.tar.gz.* (the whole image set, "
                               "unpacked into images/; hundreds of GB)"),
        train_splits={"pairwise": ("train", "test")},  # the repository's train.json has test.json's layout
    ),
    "genai_bench": DatasetInfo(
        "genai_bench", ("test_v1",), "tau", "prefbench.data.genai_bench",
        "GenAI-Bench image generation (Jiang et al. 2024): 1,735 votes left / right / tie / both-bad",
        kind="pair", default_split="test_v1",
        download=Download("TIGER-Lab/GenAI-Bench", {"*": ("image_generation/{split}-*.parquet",)}),
    ),
    "genai_rank": DatasetInfo(
        "genai_rank", ("DALLE_3", "SDXL_Base"), "genai_rank_top1", "prefbench.data.genai_rank",
        "GenAI-Bench-Rank (Lin et al. 2024): 800 prompts x 9 images of one generator, human ratings",
        default_split="DALLE_3",
        download=Download("zhiqiulin/GenAI-Image-Ranking-800", {"*": ("human_rating.json", "{split}.zip")},
                          archives=("*.zip",)),
        rating_rows="prefbench.data.genai_rank:rating_rows", rating_scale=(1, 5),
    ),
    "mmrb2": DatasetInfo(
        "mmrb2", ("t2i",), "mmrb2", "prefbench.data.mmrb2",
        "Multimodal RewardBench 2, text-to-image (Meta 2025): 1,000 expert pairs; CC BY-NC, evaluation only",
        kind="pair", default_split="t2i",
        download=Download("rl-research/multimodal-rewardbench-2", {"*": ("{split}/test-*.parquet",)}),
        trainable=False,
        train_note="Multimodal RewardBench 2 is CC BY-NC 4.0, for evaluation only: it is not to be used "
                   "for training (prefbench/data/mmrb2.py)",
    ),
    "evalmuse": DatasetInfo(
        "evalmuse", ("train", "test"), "srcc", "prefbench.data.evalmuse",
        "EvalMuse-40K (Han et al. 2024): pointwise 1-5 alignment scores and element labels per image",
        kind="pointwise", default_split="train",
        download=Download("DY-Evalab/EvalMuse", {"train": ("train_list.json",), "test": ("test.json",)},
                          note="the annotation files; the images come as the repository's archives"),
        rating_rows="prefbench.data.evalmuse:rating_rows", rating_scale=(1, 5),
    ),
    "jsonl": DatasetInfo(
        "jsonl", ("test",), "imagereward", "prefbench.data.jsonl",
        "your own data: one JSON object per line (see docs/datasets.md, 'Your own data')",
        rating_rows="prefbench.data.jsonl:rating_rows", train_splits={"rating": ("*",), "pairwise": ("*",)},
    ),
    "demo": DatasetInfo(
        "demo", ("test", "train", "ood"), "imagereward", "prefbench.data.demo",
        "synthetic preference world generated offline from a seed: known truth, 4-6 images per prompt",
        needs_data_dir=False, rating_rows="prefbench.data.demo:rating_rows",
    ),
}


def _registry():
    from prefbench.registry import Entry, Kind

    global _KIND
    if _KIND is None:
        _KIND = Kind("dataset", ENTRY_POINT_GROUP, {n: Entry(n, d.module, d.description) for n, d in DATASETS.items()})
    return _KIND


_KIND = None


def plugin_datasets() -> dict[str, DatasetSpec]:
    """Datasets that installed packages declare under ``prefbench.datasets``."""
    return {name: replace(spec, name=name, source=entry.source)
            for name, (spec, entry) in _registry().plugin_objects(DatasetSpec).items()}


def datasets(include_plugins: bool = True) -> dict[str, DatasetSpec]:
    """Every dataset, built-ins first."""
    out = dict(DATASETS)
    if include_plugins:
        out.update(plugin_datasets())
    return out


def dataset_info(name: str) -> DatasetSpec:
    if name in DATASETS:
        return DATASETS[name]
    known = datasets()
    if name in known:
        return known[name]
    raise _registry().unknown(name, known)


def training_datasets(task: str) -> list[str]:
    """The datasets ``prefbench train --task TASK`` can read (plugins included), in registry order."""
    return [name for name, spec in datasets().items() if spec.training_splits(task)]


def training_spec(name: str, task: str, split: str, data_dir: str | Path | None = None) -> DatasetSpec:
    """The spec of dataset ``name`` once it is checked that ``task`` of ``prefbench train`` may read
    its ``split`` from ``data_dir``; a UsageError that says why not otherwise."""
    if task not in TRAIN_TASKS:
        raise UsageError(f"unknown task {task!r}; tasks: {', '.join(TRAIN_TASKS)}")
    info = dataset_info(name)
    if not info.trainable:
        raise UsageError(f"dataset {name!r} is not for training: {info.train_note or 'its spec says so'}. "
                         f"Evaluate with it (`prefbench run --dataset {name}`), train on another dataset")
    splits = info.training_splits(task)
    if not splits:
        if task == "rating":
            raise UsageError(
                f"the rating task reads per-image ratings, which dataset {name!r} does not have; datasets with "
                f"them: {', '.join(training_datasets('rating'))} (see docs/training.md; a dataset plugin adds "
                "one with rating_rows). The pairwise task reads any dataset with ranks")
        raise UsageError(f"the {task} task cannot read dataset {name!r}; it reads: "
                         f"{', '.join(training_datasets(task))}")
    if "*" not in splits and split not in splits:
        raise UsageError(f"the {task} task reads dataset {name!r} from split(s) {', '.join(splits)}, "
                         f"not {split!r} (--split)")
    if info.needs_data_dir and data_dir is None:
        raise UsageError(f"dataset {name!r} needs --data-dir (see `prefbench list` and docs/training.md)")
    return info


def load_dataset(
    name: str,
    split: str | None = None,
    data_dir: str | Path | None = None,
    *,
    with_images: bool = True,
    limit: int | None = None,
    allow_outside_data_dir: bool = False,
    task: str | None = None,
) -> Split:
    """Load ``split`` of dataset ``name`` from ``data_dir``.

    ``with_images=False`` reads only the annotation (enough for ``prefbench evaluate``).
    ``limit`` keeps the first N items. Image paths are confined to the data dir (see
    :func:`confine`) unless ``allow_outside_data_dir``. ``task``: load for that task of
    ``prefbench train``, whose splits (and refusals) the spec gives (:func:`training_spec`).
    """
    info = dataset_info(name)
    split = split or info.default_split
    if task is not None:
        training_spec(name, task, split, data_dir)
    elif split not in info.splits:
        raise UsageError(f"dataset {name!r} has no split {split!r}; splits: {', '.join(info.splits)}")
    if info.needs_data_dir and data_dir is None:
        raise UsageError(f"dataset {name!r} needs --data-dir (see `prefbench list` and docs/datasets.md)")
    load = info.loader()
    result: Split = load(split=split, data_dir=Path(data_dir) if data_dir else None, with_images=with_images)
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit must be at least 1, got {limit}")
        result.items = result.items[:limit]
    if result.root is None and data_dir is not None:
        data_dir = Path(data_dir)
        result.root = data_dir if data_dir.is_dir() else data_dir.parent
    if with_images and not allow_outside_data_dir and result.root is not None:
        confine(result)
    return result


def confine(split: Split) -> Split:
    """Confine every image path of ``split`` to its data dir (``split.root``), in place.

    Each image keeps the root, so reading it re-checks where its path resolves (a symlink
    swapped in later is caught too): an image outside is never opened and gets status
    ``error``. A split whose every image file lies outside is an error up front.
    """
    from prefbench.data.images import is_inside
    from prefbench.errors import DataError

    root = Path(split.root)
    base = os.path.realpath(root)
    outside, with_path, first = 0, 0, None
    for n, item in enumerate(split.items):
        refs = []
        for ref in item.images:
            if ref.path is not None:
                with_path += 1
                if not is_inside(os.path.realpath(ref.path), base):
                    outside += 1
                    first = first or ref.path
            refs.append(replace(ref, root=root) if ref.path is not None else ref)
        split.items[n] = replace(item, images=refs)
    if with_path and outside == with_path:
        raise DataError(
            f"all {outside} image paths resolve outside the data dir {root} (the first: {first}); "
            "nothing would be read. Put the images under the data dir, or pass --allow-outside-data-dir "
            "if you really keep them elsewhere", split.source or None,
        )
    return split


__all__ = ["DATASETS", "TRAIN_TASKS", "DatasetInfo", "DatasetSpec", "ImageRef", "Item", "Split", "confine",
           "dataset_info", "datasets", "load_dataset", "training_datasets", "training_spec"]
