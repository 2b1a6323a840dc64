"""The convention registry, and the original official accuracy conventions (the 2025-26 ones are
in ``pairs``, ``bestofn`` and ``pointwise``), each reduced to per-prompt (numerator, denominator).

Accuracy is ``sum(num) / sum(den)`` over prompts, so one function serves the point estimate
and the cluster bootstrap (which resamples prompts). A missing score (NaN: the image failed or
its answer was unparsed) always counts against the scorer: it is never dropped, and never
replaced by a neutral value.

- ``imagereward`` (ImageReward's test script): every within-item pair with different human
  ranks is one trial; correct iff the better-ranked image has the strictly higher score, so a
  model tie is wrong; human ties are skipped; pooled over all pairs. num = correct pairs,
  den = untied pairs.
- ``hpdv2`` (HPSv2's ``evaluate_rank``): the scores become a strict ranking, tied scores in
  image-index order (``torch.argsort(-scores)``), then per prompt 1 - inversions / C(n, 2)
  (``inversion_score``), where an inversion is a pair ranked opposite to the humans; human-tied
  pairs are not inversions, and a model tie is one when the humans preferred the later image (so
  a constant scorer gets about 0.5, not 1). Mean over prompts: num = that value, den = 1.
  ``hpdv2_expected_ties`` counts a model tie as half an inversion instead.
- ``pickapic`` (PickScore's evaluation): scores of the two images -> softmax probabilities;
  the prediction is a tie when ``|p0 - p1| <= tie_threshold``. Credit 1 when the prediction
  equals the label (a predicted tie on a tied label included), 0.5 when only one of label and
  prediction is a tie, 0 otherwise; mean over rows.

Conventions are registered like scorers: :data:`MANIFEST` here names each built-in one
(``"name": "module:ATTR"``, wherever it is defined), and installed packages declare
:class:`Convention` objects under the ``prefbench.conventions`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

ENTRY_POINT_GROUP = "prefbench.conventions"


@dataclass(frozen=True)
class ItemData:
    """What a convention sees of one prompt: its human labels and the scorer's outputs.

    ``scores`` uses NaN for a missing score. ``element_scores[i]`` holds image i's predicted
    element probabilities (EvalMuse), ``verdicts`` a judge's raw answers for the item (keys
    ``verdict``, or ``forward`` / ``reverse`` for position-consistent protocols), when the scores
    file gave them; ``options`` the metric options of the run; ``order_probs`` (runs of a pairwise
    scorer with ``both_orders``) its judgement in each presentation order."""

    item_id: str
    ranks: np.ndarray
    scores: np.ndarray
    label_0: float | None = None
    label: str | None = None
    human: np.ndarray | None = None
    elements: Sequence[dict] | None = None
    element_scores: Sequence[dict | None] | None = None
    verdicts: dict | None = None
    options: dict = field(default_factory=dict)
    #: per image, a pairwise scorer's P(image beats the anchor) per presentation order (or None)
    order_probs: Sequence[dict | None] | None = None


@dataclass(frozen=True)
class Convention:
    """One rule, reduced to per-prompt statistics.

    Two shapes. A **ratio** rule gives per prompt ``(num, den, pairs)`` and the headline is
    sum(num) / sum(den) over prompts: ``item(ranks, scores, label_0, tie_threshold)`` (the
    original signature, still what plugins may give) or ``per_item(ItemData)``. A **global**
    rule (a correlation, a threshold swept over all pairs) gives per prompt a dict of arrays,
    ``rows(ItemData)``, and ``statistic(rows concatenated over prompts, options) -> float``.
    Either way the cluster bootstrap resamples prompts (a global rule recomputes its statistic,
    sweep or fit included, on every resample; ``max_resamples`` caps the count for slow ones).

    ``n_images``: the item size the rule needs, if any; ``options``: the metric options it reads;
    ``measure``: what the headline is ("accuracy", "human score", "SRCC", ...); ``needs``: item
    fields (``human``, ``label``, ``elements``) or outputs (``element_scores``) it cannot do
    without; ``summary(list[ItemData]) -> dict``: extra figures for the run's metrics (baselines,
    unparsed verdicts, the calibrated threshold; a key ending in ``_rule`` states a rule applied);
    ``verdict_keys`` / ``verdicts_required``: what a judge's verdict file gives it."""

    name: str
    description: str
    item: Callable[[np.ndarray, np.ndarray, float | None, float], tuple[float, float, int]] | None = None
    n_images: int | None = None
    options: tuple[str, ...] = ()
    source: str = field(default="builtin", compare=False)
    per_item: Callable[[ItemData], tuple[float, float, int]] | None = None
    rows: Callable[[ItemData], dict] | None = None
    statistic: Callable[[dict, dict], float] | None = None
    measure: str = "accuracy"
    needs: tuple[str, ...] = ()
    summary: Callable[[list[ItemData]], dict] | None = None
    max_resamples: int | None = None
    min_images: int = 1
    #: the judge answers a verdict file gives it: ("verdict",) one per item, or the orders of a
    #: position-consistent protocol (("forward", "reverse")); None = it reads no verdicts
    verdict_keys: tuple[str, ...] | None = None
    #: whether every item needs a verdict (else an unanswered item is reported missing)
    verdicts_required: bool = False

    @property
    def is_global(self) -> bool:
        return self.statistic is not None

    def stats(self, d: ItemData) -> tuple[float, float, int]:
        if self.per_item is not None:
            return self.per_item(d)
        return self.item(d.ranks, d.scores, d.label_0, float(d.options.get("tie_threshold", 0.0)))


def concat_rows(rows: Sequence[dict]) -> dict:
    """Per-prompt row dicts -> one dict of arrays (the input of a global statistic)."""
    keys = rows[0].keys() if rows else ()
    return {k: np.concatenate([np.asarray(r[k], float) for r in rows]) for k in keys}


@dataclass
class PerPrompt:
    """Per-prompt sufficient statistics; prompts with den == 0 (all human-tied) are dropped.

    ``rows`` (global conventions only): each prompt's row dict; ``num``/``den`` then count the
    prompt's units (num = den = number of rows) so item views and checks keep one shape."""

    convention: str
    item_ids: list[str]
    num: np.ndarray
    den: np.ndarray
    n_pairs: int
    rows: list[dict] | None = None
    options: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        if self.rows is not None:
            if not self.rows:
                return float("nan")
            return float(lookup(self.convention).statistic(concat_rows(self.rows), self.options))
        total = self.den.sum()
        return float(self.num.sum() / total) if total else float("nan")

    def subset(self, index: Sequence[int]) -> PerPrompt:
        index = list(index)
        return PerPrompt(self.convention, [self.item_ids[k] for k in index], self.num[index], self.den[index],
                         self.n_pairs, None if self.rows is None else [self.rows[k] for k in index], self.options)

    def to_json(self) -> dict:
        out = {"item_ids": self.item_ids, "num": self.num.tolist(), "den": self.den.tolist()}
        if self.rows is not None:
            out["rows"] = [{k: np.asarray(v, float).tolist() for k, v in r.items()} for r in self.rows]
            out["options"] = dict(self.options)
        return out

    @classmethod
    def from_json(cls, convention: str, data: dict, n_pairs: int) -> PerPrompt:
        rows = data.get("rows")
        return cls(convention, list(data["item_ids"]), np.asarray(data["num"], float),
                   np.asarray(data["den"], float), n_pairs,
                   None if rows is None else [{k: np.asarray(v, float) for k, v in r.items()} for r in rows],
                   dict(data.get("options") or {}))


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


def imagereward_item(ranks: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    i, j = _pairs(len(ranks))
    untied = ranks[i] != ranks[j]
    i, j = i[untied], j[untied]
    better = np.where(ranks[i] < ranks[j], i, j)
    worse = np.where(ranks[i] < ranks[j], j, i)
    correct = scores[better] > scores[worse]  # NaN compares False: counted wrong
    return float(correct.sum()), float(len(i))


def hpdv2_item(ranks: np.ndarray, scores: np.ndarray, model_ties: str = "index") -> tuple[float, float]:
    """HPSv2's inversion score of one prompt: 1 - inversions / C(n, 2).

    ``model_ties="index"`` (the official rule): the scores become a strict ranking first, tied
    scores ordered by image index (``evaluate_rank``'s ``torch.argsort(-scores)``, a stable sort on
    CPU for the items of up to 16 images it sorts), so of two tied images the earlier one is the
    model's better, and the pair is an inversion when the humans ranked the later one higher.
    ``model_ties="expected"``: the expectation over random orders of tied images (a model-tied,
    human-untied pair counts half an inversion). Human-tied pairs are never inversions; a missing
    score (NaN) makes every human-untied pair it is in an inversion (prefbench's rule: the official
    code has no missing scores)."""
    n = len(ranks)
    if n < 2:
        return 1.0, 1.0
    i, j = _pairs(n)  # i < j
    dr = ranks[i] - ranks[j]
    ds = scores[i] - scores[j]
    tied = ds == 0
    inversions = (((dr < 0) & (ds < 0)) | ((dr > 0) & (ds > 0))).astype(float)
    if model_ties == "index":
        inversions += tied & (dr > 0)  # i is ranked above j: wrong when the humans put j first
    elif model_ties == "expected":
        inversions += 0.5 * (tied & (dr != 0))
    else:
        raise ValueError(f"model_ties must be 'index' or 'expected', got {model_ties!r}")
    inversions[np.isnan(ds) & (dr != 0)] = 1.0
    return 1.0 - inversions.sum() / (n * (n - 1) / 2), 1.0


def pickapic_item(label_0: float, scores: np.ndarray, tie_threshold: float) -> tuple[float, float]:
    if np.isnan(scores).any():
        return 0.0, 1.0
    z = scores - scores.max()
    p = np.exp(z) / np.exp(z).sum()
    if abs(p[0] - p[1]) <= tie_threshold:
        pred = 0.5
    else:
        pred = 1.0 if p[0] > p[1] else 0.0
    if pred == label_0:
        return 1.0, 1.0
    if pred == 0.5 or label_0 == 0.5:
        return 0.5, 1.0
    return 0.0, 1.0


def _imagereward(r, s, label_0, tie_threshold):
    num, den = imagereward_item(r, s)
    return num, den, int(den)


def _hpdv2(r, s, label_0, tie_threshold):
    num, den = hpdv2_item(r, s)
    return num, den, len(r) * (len(r) - 1) // 2


def _hpdv2_expected(r, s, label_0, tie_threshold):
    num, den = hpdv2_item(r, s, model_ties="expected")
    return num, den, len(r) * (len(r) - 1) // 2


def _pickapic(r, s, label_0, tie_threshold):
    lab = label_0 if label_0 is not None else _label_from_ranks(r)
    num, den = pickapic_item(lab, s, tie_threshold)
    return num, den, 1


IMAGEREWARD = Convention(
    "imagereward", "ImageReward's test script: pooled pair accuracy, human ties skipped, model ties wrong",
    _imagereward)
HPDV2 = Convention(
    "hpdv2", "HPSv2's inversion score: mean over prompts of 1 - inversions / C(n, 2), model ties broken by image "
    "index as evaluate_rank's argsort does", _hpdv2)
HPDV2_EXPECTED_TIES = Convention(
    "hpdv2_expected_ties", "HPSv2's inversion score with a model tie counted as half an inversion (the expectation "
    "over random tie orders; not the official rule)", _hpdv2_expected)
PICKAPIC = Convention(
    "pickapic", "PickScore's evaluation: softmax of the pair, tie when |p0 - p1| <= tie_threshold, half credit "
    "for a tie on one side", _pickapic, n_images=2, options=("tie_threshold",))

#: the built-in conventions: name -> the module attribute holding it (imported when used, so this
#: module imports none of the modules that define them: no import cycle)
MANIFEST: dict[str, str] = {
    "imagereward": "prefbench.metrics.conventions:IMAGEREWARD",
    "hpdv2": "prefbench.metrics.conventions:HPDV2",
    "hpdv2_expected_ties": "prefbench.metrics.conventions:HPDV2_EXPECTED_TIES",
    "pickapic": "prefbench.metrics.conventions:PICKAPIC",
    "hpdv3": "prefbench.metrics.pairs:HPDV3",
    "tau": "prefbench.metrics.pairs:TAU",
    "diff": "prefbench.metrics.pairs:DIFF",
    "acc_with_ties_wrong": "prefbench.metrics.pairs:ACC_WITH_TIES_WRONG",
    "genai_judge": "prefbench.metrics.pairs:GENAI_JUDGE",
    "mmrb2": "prefbench.metrics.pairs:MMRB2",
    "imagereward_per_prompt": "prefbench.metrics.pairs:IMAGEREWARD_PER_PROMPT",
    "genai_rank_top1": "prefbench.metrics.bestofn:GENAI_RANK_TOP1",
    "genai_rank_top1_by3": "prefbench.metrics.bestofn:GENAI_RANK_TOP1_BY3",
    "genai_rank_best9": "prefbench.metrics.bestofn:GENAI_RANK_BEST9",
    "genai_rank_best3": "prefbench.metrics.bestofn:GENAI_RANK_BEST3",
    "srcc": "prefbench.metrics.pointwise:SRCC",
    "plcc": "prefbench.metrics.pointwise:PLCC",
    "evalmuse_element": "prefbench.metrics.pointwise:EVALMUSE_ELEMENT",
    "evalmuse": "prefbench.metrics.pointwise:EVALMUSE",
}
#: the built-in names (kept for code that imported the old tuple)
CONVENTIONS = tuple(MANIFEST)


def _named(rule: Convention, entry) -> Convention:
    """A plugin's convention under its registered name, stamped with where it came from."""
    return rule if (rule.name, rule.source) == (entry.name, entry.source) else replace(
        rule, name=entry.name, source=entry.source)


_REGISTRY = None


def registry():
    """The convention registry (:class:`prefbench.registry.Registry` of Convention)."""
    from prefbench.registry import Registry

    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry("convention", ENTRY_POINT_GROUP, MANIFEST, expect=Convention, adapt=_named)
    return _REGISTRY


def conventions(include_plugins: bool = True) -> dict[str, Convention]:
    """Every convention, built-ins first (plugins: the ``prefbench.conventions`` group)."""
    return registry().all(include_plugins)


def lookup(name: str) -> Convention:
    """The convention ``name``; :class:`~prefbench.errors.UnknownNameError` (with close names) when
    there is none."""
    return registry().get(name)


def per_prompt(
    convention: str,
    item_ids: Sequence[str],
    ranks: Sequence[Sequence[float]],
    scores: Sequence[Sequence[float]],
    label_0: Sequence[float | None] | None = None,
    tie_threshold: float = 0.0,
) -> PerPrompt:
    """Per-prompt statistics for ``convention`` from ranks and scores alone (NaN = missing)."""
    datas = [ItemData(str(i), np.asarray(r, float), np.asarray(s, float),
                      label_0[k] if label_0 is not None else None, options={"tie_threshold": tie_threshold})
             for k, (i, r, s) in enumerate(zip(item_ids, ranks, scores, strict=True))]
    return per_prompt_data(convention, datas)


def per_prompt_data(convention: str, datas: Sequence[ItemData]) -> PerPrompt:
    """Per-prompt statistics for ``convention`` over prompts given as :class:`ItemData`."""
    from prefbench.errors import UsageError

    try:
        rule = lookup(convention)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    options = dict(datas[0].options) if datas else {}
    ids, nums, dens, rows, n_pairs = [], [], [], [], 0
    for d in datas:
        n = len(d.ranks)
        if rule.n_images is not None and n != rule.n_images:
            raise ValueError(f"{rule.name} items have {rule.n_images} images; item {d.item_id} has {n}")
        if n < rule.min_images:
            raise ValueError(f"{rule.name} needs at least {rule.min_images} images per item; item {d.item_id} has {n}")
        for need in rule.needs:
            if getattr(d, need) is None:
                raise ValueError(f"{rule.name} needs {need!r} for every item; item {d.item_id} has none")
        if rule.is_global:
            r = rule.rows(d)
            units = len(next(iter(r.values()))) if r else 0
            if units == 0:
                continue
            rows.append(r)
            num = den = float(units)
            pairs = units
        else:
            num, den, pairs = rule.stats(d)
            if den == 0:
                continue
        ids.append(str(d.item_id))
        nums.append(num)
        dens.append(den)
        n_pairs += int(pairs)
    return PerPrompt(rule.name, ids, np.asarray(nums, float), np.asarray(dens, float), n_pairs,
                     rows if rule.is_global else None, options if rule.is_global else {})


def _label_from_ranks(r: np.ndarray) -> float:
    return 0.5 if r[0] == r[1] else (1.0 if r[0] < r[1] else 0.0)


#: PickScore's threshold grid (yuvalkirstain/PickScore ``trainer/scripts/eval_preference_predictor.py``,
#: ``main``): 0, 0.1, ..., 1
PICKSCORE_GRID = tuple(k / 10 for k in range(11))
#: a finer grid, offered as an option (not the official one)
FINE_GRID = tuple(k / 100 for k in range(101))


def tune_tie_threshold(
    item_ids, ranks, scores, label_0=None, grid: Sequence[float] | None = None
) -> tuple[float, float]:
    """The tie threshold that maximises pickapic accuracy (tune it on ``validation_unique``).

    ``grid`` defaults to PickScore's own (:data:`PICKSCORE_GRID`); :data:`FINE_GRID` searches
    steps of 0.01. Returns ``(threshold, accuracy)``; the smallest threshold wins among equals,
    as ``np.argmax`` picks in PickScore's script.
    """
    grid = PICKSCORE_GRID if grid is None else grid
    best = (0.0, -1.0)
    for t in grid:
        acc = per_prompt("pickapic", item_ids, ranks, scores, label_0, float(t)).accuracy
        if acc > best[1]:
            best = (float(t), acc)
    return best
