"""Datasets: one loader per dataset, all returning a :class:`Split` of :class:`Item`.

Nothing here touches the network. A split whose files are missing raises
:class:`~prefbench.errors.MissingDataError` naming the files to provide and where.

Each dataset is one module with a ``SPEC`` (:class:`DatasetSpec`) and a
``load(split=, data_dir=, with_images=)`` function, named by one line of :data:`MANIFEST`; a
package adds one by declaring its spec under the ``prefbench.datasets`` entry-point group (the
registry's one mechanism: built-in names win a clash, a broken plugin is a warning).
:data:`DATASETS` holds the built-in specs.

The spec also says what ``prefbench train`` may do with the dataset (:func:`training_spec`):
whether it may train at all (``trainable``, ``train_note``), which splits each task reads
(``train_splits``), and which reader gives the rating task its per-image ratings
(``rating_rows``, see :mod:`prefbench.data.ratings`). The trainer reads datasets through these
fields alone.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from prefbench.data.model import ImageRef, Item, Split
from prefbench.data.spec import TRAIN_TASKS, DatasetSpec, Download
from prefbench.errors import UsageError

#: the built-in datasets: name -> the module attribute holding its DatasetSpec (the demo world's
#: ``demo`` is registered by this distribution's entry point, as a plugin's dataset is)
MANIFEST: dict[str, str] = {
    "imagereward": "prefbench.data.imagereward:SPEC",
    "hpdv2": "prefbench.data.hpdv2:SPEC",
    "pickapic": "prefbench.data.pickapic:SPEC",
    "hpdv3": "prefbench.data.hpdv3:SPEC",
    "genai_bench": "prefbench.data.genai_bench:SPEC",
    "genai_rank": "prefbench.data.genai_rank:SPEC",
    "mmrb2": "prefbench.data.mmrb2:SPEC",
    "evalmuse": "prefbench.data.evalmuse:SPEC",
    "jsonl": "prefbench.data.jsonl:SPEC",
}
ENTRY_POINT_GROUP = "prefbench.datasets"
#: the name the spec had before plugins could provide one
DatasetInfo = DatasetSpec


def _named(spec: DatasetSpec, entry) -> DatasetSpec:
    """A plugin's spec under its registered name, stamped with where it came from."""
    return spec if (spec.name, spec.source) == (entry.name, entry.source) else replace(
        spec, name=entry.name, source=entry.source)


_REGISTRY = None


def _registry():
    """The dataset registry (:class:`prefbench.registry.Registry` of DatasetSpec)."""
    from prefbench.registry import Registry

    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry("dataset", ENTRY_POINT_GROUP, MANIFEST, expect=DatasetSpec, adapt=_named)
    return _REGISTRY


def __getattr__(name: str):
    if name == "DATASETS":  # the built-in specs (imported when first asked)
        reg = _registry()
        return {n: reg.get(n) for n in reg.builtins()}
    if name == "IMAGEREWARD_TEST_JSON":
        from prefbench.data.imagereward import IMAGEREWARD_TEST_JSON

        return IMAGEREWARD_TEST_JSON
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def plugin_datasets() -> dict[str, DatasetSpec]:
    """Datasets that other installed packages declare under ``prefbench.datasets``."""
    return {name: spec for name, (spec, _) in _registry().plugin_objects().items()}


def datasets(include_plugins: bool = True) -> dict[str, DatasetSpec]:
    """Every dataset, built-ins first."""
    return _registry().all(include_plugins)


def dataset_info(name: str) -> DatasetSpec:
    """The spec of dataset ``name``; :class:`~prefbench.errors.UnknownNameError` with close names."""
    return _registry().get(name)


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


def split_at_limit(items: list, limit: int) -> tuple[list, list]:
    """``--limit N``: the first N items, and the rest."""
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    return items[:limit], items[limit:]


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
        result.items, _ = split_at_limit(result.items, limit)
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


__all__ = ["DATASETS", "MANIFEST", "TRAIN_TASKS", "DatasetInfo", "DatasetSpec", "Download", "ImageRef", "Item", "Split",
           "confine",
           "dataset_info", "datasets", "load_dataset", "training_datasets", "training_spec"]
