"""Scorers as rewards: score, rank and pick the best of N images for a prompt, in-process.

>>> import prefbench
>>> scorer = prefbench.load_scorer("random")
>>> scorer.rank("a red cube", [red_png, blue_png, green_png])   # doctest: +SKIP
[2, 1, 3]

:func:`load_scorer` builds any registered scorer with the same options as ``prefbench run -S``
(engine options too). Importing this module imports no torch; the model loads on the first
call that needs it. Images are file paths, ``PIL.Image`` objects or encoded bytes; each is
decoded with the same limits as a run (header check, pixel and byte caps).

An image's identity is its content: the scores of an image set do not depend on which call or
batch it arrives in (the ``random`` scorer and the pairwise anchor draw are keyed by a hash of
the prompt and the image bytes), so the reward server's micro-batching changes no score.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefbench.errors import ImageError, PrefbenchError, ScoringError, UsageError  # noqa: F401  (ScoringError re-exported)

MODES = ("anchor", "round_robin")
ON_ERROR = ("raise", "nan")


@dataclass
class ScoredItem:
    """One prompt's images, scored: ``results[i]`` is image i's
    :class:`~prefbench.scorers.base.ImageResult` (score, status, error, typed fields, detail)."""

    prompt: str
    results: list[Any]
    item_id: str = ""
    mode: str = "anchor"

    @property
    def scores(self) -> list[float | None]:
        return [r.score for r in self.results]

    @property
    def statuses(self) -> list[str]:
        return [r.status for r in self.results]

    @property
    def errors(self) -> list[str | None]:
        return [r.error for r in self.results]

    @property
    def sigmas(self) -> list[float | None]:
        """Each image's sigma (scorers that give one, such as ``hpsv3``); None elsewhere."""
        return [getattr(r, "sigma", None) for r in self.results]

    @property
    def details(self) -> list[dict]:
        return [dict(r.detail, **r.typed_fields()) for r in self.results]

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.results)

    def ranks(self) -> list[int]:
        """1 = best; equal scores share the better rank ("1224"); a failed image ranks last."""
        return rank_scores(self.scores)


def rank_scores(scores: Sequence[float | None]) -> list[int]:
    """Competition ranks, 1 = highest score; ties share a rank; None or NaN ranks after all others.

    >>> rank_scores([0.2, 0.9, 0.2, None])
    [2, 1, 2, 4]
    """
    def key(s):
        return -math.inf if s is None or (isinstance(s, float) and math.isnan(s)) else s

    values = [key(s) for s in scores]
    return [1 + sum(1 for w in values if w > v) for v in values]


def _image_bytes(image: Any, n: int) -> tuple[bytes | None, str | None]:
    """(encoded bytes, None) or (None, why it is unusable) for one API image."""
    from prefbench.data.model import ImageRef

    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image), None
    if isinstance(image, (str, os.PathLike)):
        try:
            return ImageRef(f"image-{n}", path=Path(image)).read_bytes(), None
        except ImageError as exc:
            return None, str(exc)
    if hasattr(image, "save") and hasattr(image, "mode"):  # a PIL image: stored losslessly
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)
        return buf.getvalue(), None
    raise UsageError(f"image {n}: expected a path, PIL image or bytes, got {type(image).__name__}")


def check_unicode(text: str, what: str) -> None:
    """UsageError for text that UTF-8 cannot hold (a lone surrogate, e.g. from JSON's "\\ud800")."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(f"{what} is not valid Unicode: {exc.reason} at character {exc.start} "
                         f"({text[exc.start:exc.end]!a})") from None


def make_item(prompt: str, images: Sequence[Any], item_id: str | None = None):
    """An :class:`~prefbench.data.model.Item` of the API's images (unranked), keyed by content,
    plus {index: why unusable} for images that cannot even be read."""
    from prefbench.data.model import ImageRef, Item

    if not isinstance(prompt, str):
        raise UsageError(f"prompt must be a string, got {type(prompt).__name__}")
    check_unicode(prompt, "prompt")
    if isinstance(images, (str, bytes, os.PathLike)) or not isinstance(images, Iterable):
        raise UsageError("images must be a list (of paths, PIL images or bytes)")
    images = list(images)
    if not images:
        raise UsageError("no images to score")
    h = hashlib.sha256(prompt.encode())
    refs, unreadable = [], {}
    for n, image in enumerate(images):
        data, why = _image_bytes(image, n)
        h.update(b"\0" + (hashlib.sha256(data).digest() if data is not None else b"unreadable"))
        key = os.fspath(image) if isinstance(image, (str, os.PathLike)) else f"image-{n}"
        if data is None:
            unreadable[n] = why
            refs.append(ImageRef(key, path=None))
        else:
            refs.append(ImageRef(key, data=data))
    return Item(item_id or h.hexdigest()[:16], prompt, refs, [1] * len(refs)), unreadable


class ScoresAndRanks:
    """``score`` and ``rank`` on top of a ``score_items`` (the in-process scorer and the
    reward server's client answer alike)."""

    def score(self, prompt: str, images: Sequence[Any], *, on_error: str | None = None,
              mode: str | None = None) -> list[float]:
        """One float per image, in order (higher = preferred). A failed image raises
        :class:`ScoringError` unless ``on_error="nan"`` (then its score is NaN)."""
        item = self.score_items([(prompt, images)], on_error=on_error, mode=mode)[0]
        return [math.nan if s is None else s for s in item.scores]

    def rank(self, prompt: str, images: Sequence[Any], *, on_error: str | None = None,
             mode: str | None = None) -> list[int]:
        """Ranks, 1 = best, ties share a rank; with ``on_error="nan"`` a failed image ranks last."""
        return rank_scores(self.score(prompt, images, on_error=on_error, mode=mode))


class RewardScorer(ScoresAndRanks):
    """A loaded scorer, used as a reward: :meth:`score`, :meth:`rank`, :meth:`score_items`.

    Build it with :func:`load_scorer`. Use it as a context manager, or call :meth:`close`."""

    def __init__(self, scorer, spec: dict, model: dict, *, on_error: str = "raise", mode: str = "anchor",
                 note: str | None = None, batch_size: int | None = None):
        self._scorer, self.spec, self.model = scorer, spec, model
        self.name = spec["name"]
        self.on_error = _check_choice("on_error", on_error, ON_ERROR)
        self.mode = self._check_mode(mode)
        self.note = note
        self.batch_size = batch_size or getattr(scorer, "batch_size", 16) or 16
        self._ready = False
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> RewardScorer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Free the model (a closed scorer refuses further calls)."""
        if self._ready and not self._closed:
            self._scorer.close()
        self._closed = True

    def setup(self) -> None:
        """Load the model now (the first scoring call does it otherwise); a closed scorer refuses."""
        if self._closed:
            raise UsageError(f"scorer {self.name!r} is closed")
        if not self._ready:
            self._scorer.setup()
            self._ready = True

    def info(self) -> dict[str, Any]:
        """Scorer, model (id, revision), resolved options, engine, mode and versions."""
        from prefbench.provenance import package_versions

        out = {"scorer": self.name, "model": self.model, "options": self.spec.get("resolved", {}),
               "engine": self.spec.get("engine"), "mode": self.mode, "pairwise": self.pairwise,
               "on_error": self.on_error, "batch_size": self.batch_size, "versions": package_versions()}
        if self.note:
            out["note"] = self.note
        return out

    def identity(self) -> dict[str, Any]:
        """What changes this scorer's scores (a generator run's config hash is built on it): what
        :func:`prefbench.scorer_spec.scorer_identity` says of a run's scorer, plus a mode other than
        the default anchor one."""
        from prefbench.scorer_spec import scorer_identity

        return {**scorer_identity(self.spec, self._scorer, self.model),
                **({"mode": self.mode} if self.mode != "anchor" else {})}

    @property
    def pairwise(self) -> bool:
        return bool(getattr(self._scorer, "anchor_pairwise", False))

    @property
    def gives_sigma(self) -> bool:
        """Whether scores come with a standard deviation (``ScoredItem.sigmas``)."""
        return bool(getattr(self._scorer, "gives_sigma", False))

    def _check_mode(self, mode: str | None) -> str:
        mode = _check_choice("mode", mode or "anchor", MODES)
        if mode == "round_robin" and not self.pairwise:
            raise UsageError(f"mode 'round_robin' needs a pairwise scorer (anchor_pairwise); {self.name!r} scores "
                             "each image on its own")
        return mode

    # -- scoring -----------------------------------------------------------------------------
    def score_items(self, items: Iterable[Any], *, on_error: str | None = None,
                    mode: str | None = None) -> list[ScoredItem]:
        """Many prompts in batched calls. ``items``: ``(prompt, images)`` pairs or
        ``{"prompt": ..., "images": [...]}`` dicts. Every image gets a status and detail; with
        ``on_error="raise"`` (the default) any failure raises :class:`ScoringError` after all
        items are scored (its ``items`` keep every result)."""
        on_error = _check_choice("on_error", on_error or self.on_error, ON_ERROR)
        mode = self._check_mode(mode or self.mode)
        built = [make_item(*_unpack(entry, n)) for n, entry in enumerate(items)]
        self.setup()
        if mode == "round_robin":
            scored = [self._round_robin(item, unreadable) for item, unreadable in built]
        else:
            results = self._run([(item, unreadable) for item, unreadable in built])
            scored = [ScoredItem(item.prompt, res, item.item_id, mode) for (item, _), res in zip(built, results)]
        if on_error == "raise":
            raise_failures(scored)
        return scored

    def _run(self, built: list[tuple[Any, dict[int, str]]]) -> list[list[Any]]:
        """Score whole items through the scorer's batches; unreadable images fail on their own."""
        from prefbench.isolate import score_isolated
        from prefbench.scorers.base import ImageResult

        out: list[list[Any]] = []
        for b in range(0, len(built), self.batch_size):
            chunk = built[b:b + self.batch_size]
            tasks = [(item, [k for k in range(item.n_images) if k not in bad]) for item, bad in chunk]
            # a raising batch is split until only the culprit fails; non-finite scores are errors
            results = score_isolated(self._scorer, [t for t in tasks if t[1]])
            it = iter(results)
            for (item, bad), (_, indices) in zip(chunk, tasks):
                res = next(it) if indices else {}
                out.append([ImageResult.failed(bad[k]) if k in bad else
                            res.get(k) or ImageResult.failed("the scorer returned no result")
                            for k in range(item.n_images)])
        return out

    def _round_robin(self, item, unreadable: dict[int, str]) -> ScoredItem:
        """Every pair compared once (a two-image item: the scorer draws which is the anchor);
        score = mean P(image beats the other) over its n-1 pairs (Pref-GRPO's win rate)."""
        from prefbench.data.model import Item
        from prefbench.scorers.base import ImageResult

        n = item.n_images
        if n < 2:
            raise UsageError("mode 'round_robin' needs at least two images")
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        # each image is decoded once for its n-1 comparisons, not once per comparison
        images = [dataclasses.replace(ref, memo={}) for ref in item.images]
        subs = [(Item(f"{item.item_id}:{i}-{j}", item.prompt, [images[i], images[j]], [1, 1]),
                 {m: unreadable[k] for m, k in enumerate((i, j)) if k in unreadable}) for i, j in pairs]
        results = self._run(subs)
        wins: dict[int, dict[int, float]] = {k: {} for k in range(n)}
        failures: dict[int, list[str]] = {k: [] for k in range(n)}
        traces: dict[int, list[dict]] = {k: [] for k in range(n)}
        for (i, j), res in zip(pairs, results):
            a, b = res
            if a.status != "ok" or b.status != "ok":
                why = next(r.error for r in (a, b) if r.status != "ok")
                failures[i].append(f"vs image {j}: {why}")
                failures[j].append(f"vs image {i}: {why}")
                continue
            # the non-anchor image's prob is P(it beats the anchor)
            p_i = a.prob if a.anchor_index == 1 else 1.0 - b.prob
            wins[i][j], wins[j][i] = p_i, 1.0 - p_i
            for k, other, r in ((i, j, a), (j, i, b)):
                traces[k].append({"opponent": other, "p_win": wins[k][other], "detail": r.detail})
        out = []
        for k in range(n):
            if failures[k]:
                out.append(ImageResult.failed("; ".join(failures[k]), comparisons=traces[k]))
            else:
                out.append(ImageResult(sum(wins[k].values()) / (n - 1),
                                       detail={"mode": "round_robin", "comparisons": traces[k]}))
        return ScoredItem(item.prompt, out, item.item_id, "round_robin")


def raise_failures(scored: list) -> None:
    """:class:`ScoringError` naming the first image that is not ``ok`` (and how many more), if any;
    ``scored``: items with ``statuses`` and ``errors`` (in-process or from the server)."""
    failed = [(n, k) for n, item in enumerate(scored) for k, s in enumerate(item.statuses) if s != "ok"]
    if failed:
        n, k = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise ScoringError(f"item {n} image {k}: {scored[n].statuses[k]}: {scored[n].errors[k]}{more}; pass "
                           "on_error='nan' to get NaN scores instead", scored)


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UsageError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _unpack(entry: Any, n: int) -> tuple[str, Sequence[Any]]:
    if isinstance(entry, dict):
        if "prompt" not in entry or "images" not in entry:
            raise UsageError(f"item {n}: expected {{'prompt': ..., 'images': [...]}}, got keys {sorted(entry)}")
        return entry["prompt"], entry["images"]
    try:
        prompt, images = entry
    except (TypeError, ValueError):
        raise UsageError(f"item {n}: expected a (prompt, images) pair or a dict") from None
    return prompt, images


def load_scorer(name: str, model: str | None = None, engine: str | None = None, *, seed: int = 0,
                on_error: str = "raise", mode: str = "anchor", batch_size: int | None = None,
                **options: Any) -> RewardScorer:
    """A registered scorer (``prefbench list``), ready to :meth:`~RewardScorer.score`.

    ``model``: a path, hub id or alias (``prefbench-demo/rating``); omitted, a scorer with a
    bundled demo checkpoint uses it (``info()["note"]`` says so). ``engine`` and ``options``:
    as ``prefbench run --engine`` and ``-S`` (e.g. ``rollouts=3``, ``base_url=[...]``).
    ``mode``: ``anchor`` (pairwise scorers: N-1 comparisons with a seeded anchor, the paper's
    rule) or ``round_robin`` (all pairs; score = win rate). ``on_error``: ``raise`` or ``nan``."""
    from prefbench.scorer_spec import ScorerSpec, build_scorer

    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise UsageError(f"batch_size must be a whole number >= 1 (or None: the scorer's), got {batch_size!r}")
    built = build_scorer(ScorerSpec(name, model, engine, dict(options), seed=seed))
    note = None
    if built.model_defaulted:
        note = (f"no model given: using the bundled checkpoint {built.model} (a tiny model trained on the synthetic "
                "demo world, for trying prefbench out; not a reward model for real images)")
    return RewardScorer(built.scorer, built.record, built.model_info, on_error=on_error, mode=mode, note=note,
                        batch_size=batch_size)


def ranking(item: ScoredItem, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The images best first: rank, index, name, score, status, error and reasoning traces
    (``prefbench rank``'s rows). Failed images come last, with their error."""
    names = list(names) if names is not None else [f"image-{k}" for k in range(len(item.results))]
    ranks = item.ranks()
    rows = []
    for k, r in enumerate(item.results):
        traces = [ro["text"] for ro in r.detail.get("rollouts", []) if isinstance(ro, dict) and ro.get("text")]
        for comp in r.detail.get("comparisons", []):  # round robin: the traces of each comparison
            traces += [ro["text"] for ro in comp.get("detail", {}).get("rollouts", []) if ro.get("text")]
        rows.append({"rank": ranks[k] if r.status == "ok" else None, "index": k, "image": names[k],
                     "score": r.score, "status": r.status, "error": r.error, **r.typed_fields(), "traces": traces})
    return sorted(rows, key=lambda row: (row["rank"] is None, row["rank"] or 0, row["index"]))
