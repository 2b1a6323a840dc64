"""What a dataset is, for the registry: :class:`DatasetSpec` (splits, item kind, loader,
official convention, what training may read) and :class:`Download` (where its files live).

Each dataset module defines its ``SPEC``; ``prefbench.data``'s manifest names it
(``"imagereward": "prefbench.data.imagereward:SPEC"``) and a plugin declares one under the
``prefbench.datasets`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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
