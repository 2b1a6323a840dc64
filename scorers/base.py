"""The scorer contract.

``__init__`` validates and stores parameters (cheap, no weights); ``setup()`` loads weights;
``score_batch(tasks)`` returns, for each (item, image indices) task, one :class:`ImageResult`
per requested image with an explicit status. A scorer never folds a failure into a number:
a failed image has ``score=None`` and status ``error`` or ``unparsed``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from prefbench.data.model import Item
from prefbench.errors import ImageError

STATUSES = ("ok", "unparsed", "error")


@dataclass
class ImageResult:
    """One image's outcome.

    The typed fields are what the runner and the report read: ``prob`` (anchor-pairwise
    scorers: P(image beats the item's anchor), 0.5 for the anchor itself) with ``anchor_index``,
    ``forced`` (a reasoning budget ran out and the answer was forced), ``generated_tokens``,
    ``retryable`` (a transient failure, retried on the next run), ``prompt_tokens`` / ``vision_tokens``
    (what the scores read, for utilisation), and ``sigma`` (a score's standard deviation where the model gives one), ``order_probs`` (a pairwise
    scorer that showed both orders: P(image beats the anchor) per presentation order,
    ``anchor_first`` / ``candidate_first``, for position-consistent conventions such as MMRB2's). ``detail`` holds traces only:
    rollouts, per-rollout scores, what an engine reported; nothing reads meaning out of it."""

    score: float | None
    status: str = "ok"
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    prob: float | None = None
    anchor_index: int | None = None
    forced: bool = False
    generated_tokens: int | None = None
    retryable: bool = False
    order_probs: dict[str, float] | None = None
    #: the prompts this image's score read, in tokens (all rollouts; a comparison's prompt holds
    #: both images), and how many of them were image tokens: None where the engine does not say
    prompt_tokens: int | None = None
    vision_tokens: int | None = None
    #: a scorer whose model gives an uncertainty with its score (HPSv3's head: score = mu, this =
    #: sigma = exp of its second output): the standard deviation of the score, in score units
    sigma: float | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "ok" and self.score is None:
            raise ValueError("an ok result needs a score")
        if self.status != "ok" and self.score is not None:
            raise ValueError(f"a {self.status} result must not carry a score")
        if self.retryable and self.status != "error":
            raise ValueError("only an error can be retryable")

    @classmethod
    def failed(cls, reason: str, status: str = "error", *, retryable: bool = False, anchor_index: int | None = None,
               **detail) -> ImageResult:
        return cls(None, status, reason, detail, anchor_index=anchor_index, retryable=retryable)

    #: the typed fields as sample-row keys (written only when set)
    TYPED = ("prob", "anchor_index", "forced", "generated_tokens", "retryable", "order_probs", "prompt_tokens",
             "vision_tokens", "sigma")

    def typed_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.TYPED:
            value = getattr(self, key)
            if value is not None and value is not False:
                out[key] = value
        return out


Task = tuple[Item, Sequence[int]]


class Scorer:
    """Base class. Subclasses set ``name`` and implement ``score_item`` or ``score_batch``.

    Keyword parameters of ``__init__`` are the scorer's options; ``prefbench run -S key=value``
    sets them, and :meth:`params` records every resolved value in ``run.json``.
    """

    name: ClassVar[str] = ""
    #: items per ``score_batch`` call chosen by the runner
    batch_size: int = 16
    #: True for scorers whose results carry ``prob`` vs ``anchor_index``
    anchor_pairwise: ClassVar[bool] = False
    #: True for scorers whose ok results carry ``sigma`` (a score's standard deviation)
    gives_sigma: ClassVar[bool] = False

    def __init__(self, *, seed: int = 0, model: str | None = None):
        self.seed = seed
        self.model = model

    # -- identity -------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Every option with its resolved value (JSON-serialisable)."""
        import inspect

        out = {}
        for name in inspect.signature(type(self).__init__).parameters:
            if name in ("self", "args", "kwargs"):
                continue
            out[name] = getattr(self, name, None)
        return out

    def model_info(self) -> dict[str, Any]:
        """Model id and revision as recorded in run.json."""
        return {"id": self.model, "revision": None}

    def prompt_template_hash(self) -> str | None:
        """sha256 of the prompt templates this scorer renders, or None if it has none."""
        return None

    def cache_key(self) -> str:
        """A hash of the scorer's name, options, model and prompts. A run's identity is not this:
        it is :func:`prefbench.scorer_spec.scorer_identity` (which adds the engine) within the run's
        config hash (:func:`prefbench.runner.config_identity`)."""
        blob = json.dumps(
            {"name": self.name, "params": self.params(), "model": self.model_info(),
             "prompt": self.prompt_template_hash()},
            sort_keys=True, default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    # -- lifecycle ------------------------------------------------------------------------
    def setup(self) -> None:
        """Load weights. Called once, after the runner knows there is work to do."""

    def close(self) -> None:
        """Free resources."""

    def summary(self) -> dict[str, Any]:
        """Extra run-level numbers for run.json (e.g. generated tokens, position bias)."""
        return {}

    def summary_of_rows(self, rows: Iterable[dict]) -> dict[str, Any]:
        """run.json's ``scorer_summary`` when a run that scored in this process finishes; ``rows`` are
        all of the run's sample rows, those of earlier sessions included. A scorer whose run-level
        figures can be recounted from its rows (the judge's parse failures and position bias) does so
        here, so that a resumed run reports all of its work; the default is :meth:`summary`."""
        return self.summary()

    # -- scoring --------------------------------------------------------------------------
    def score_item(self, item: Item, indices: Sequence[int]) -> dict[int, ImageResult]:
        raise NotImplementedError(f"{type(self).__name__} implements neither score_item nor score_batch")

    def score_batch(self, tasks: Sequence[Task]) -> list[dict[int, ImageResult]]:
        return [self.score_item(item, indices) for item, indices in tasks]

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def load_images(item: Item, indices: Sequence[int]):
        """Decode the requested images: ({index: PIL.Image}, {index: failed ImageResult})."""
        images, failed = {}, {}
        for k in indices:
            try:
                images[k] = item.images[k].open()
            except ImageError as exc:
                failed[k] = ImageResult.failed(str(exc))
        return images, failed
