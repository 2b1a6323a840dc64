"""The paper's VLM scorers: expected_rating, anchor_pairwise, naive_sampling, zero_shot.

All four share one class (:class:`VLMScorer`): render a template per image (rating) or per
anchor comparison (pairwise), ask an engine (:mod:`prefbench.engines`: transformers, openai,
vllm, or a plugin) for ``rollouts`` reasoning traces per prompt, and read the answer out either
*softly* from the answer-token distribution at the answer position (expected rating, P("1"))
or *hard* from the generated text. The scorer never knows which engine runs it. The score of an image is the mean
over its rollouts (Mean@k); every rollout's trace, score and flags go into ``detail``.

Pairwise (anchor) scheme, paper sec. 3: per item one anchor image is drawn with an RNG keyed by
(seed, item id); every other image is compared with it (N-1 comparisons). The anchor is shown
as Image 1 and the candidate as Image 2, so P(answer "1") = P(candidate better). With
``both_orders`` each comparison also runs with the candidate first (P(candidate better) =
P("0") there) and the two are averaged; the measured position bias
mean(P("1" | anchor first) + P("1" | candidate first) - 1) goes into the run summary
(> 0: the model favours whichever image is shown second). The anchor scores 0.5.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from prefbench.data.model import Item
from prefbench.engines.base import Engine, GenerationSpec, Job
from prefbench.errors import ImageError
from prefbench.scorers.base import ImageResult, Scorer
from prefbench.scorers.vlm import prompts
from prefbench.scorers.vlm.prompts import PAIRWISE_TOKENS, RatingScale

TASKS = ("rating", "pairwise")
READOUTS = ("soft", "hard")


def _softmax(logits: Sequence[float]) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


def anchor_index(seed: int, item: Item, usable: Sequence[int] | None = None) -> int | None:
    """The item's anchor: the first usable image in a permutation drawn from (seed, item id).
    Deterministic across runs, batch sizes and resumes."""
    key = int.from_bytes(hashlib.sha256(item.item_id.encode()).digest()[:8], "little")
    order = np.random.default_rng([seed, key]).permutation(item.n_images)
    usable_set = set(range(item.n_images) if usable is None else usable)
    return next((int(k) for k in order if k in usable_set), None)


DEFAULT_BUDGET = 512


def needs_model_hint(engine: str | Engine | None) -> str:
    """What to pass as --model: a checkpoint for an in-process engine; for a server's engine
    (``--engine openai``) the name the server serves, and the server's URL."""
    in_process = getattr(engine, "in_process", True)
    if isinstance(engine, str):
        from prefbench.registry import load_engine

        try:
            in_process = load_engine(engine).in_process
        except Exception:  # an unknown or broken engine is reported where it is built
            in_process = True
    if not in_process:
        return ("needs --model: the model name the server serves (its /v1/models lists it, e.g. "
                "--model Qwen/Qwen2.5-VL-7B-Instruct), with --base-url URL of the server "
                "(e.g. --base-url http://127.0.0.1:8000/v1)")
    return "needs --model (a checkpoint folder or hub id loadable with AutoModelForImageTextToText)"


def default_budget(model: str | None) -> int:
    """The reasoning budget a checkpoint asks for in its generation_config.json (the tiny test
    model asks for 32, so smoke tests stay fast on CPU), else :data:`DEFAULT_BUDGET`."""
    import json
    from pathlib import Path

    path = Path(model or "") / "generation_config.json"
    try:
        value = json.loads(path.read_text()).get("max_new_tokens") if path.is_file() else None
    except (OSError, ValueError):
        value = None
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_BUDGET


class VLMScorer(Scorer):
    """Shared scorer logic; subclasses fix the task and read-out or leave them selectable."""

    extra: ClassVar[str] = "vlm"
    #: runs on an engine (``--engine``); the engine's options are accepted next to the scorer's
    uses_engine: ClassVar[bool] = True
    default_engine: ClassVar[str] = "transformers"
    batch_size = 16  # items per score_batch call; jobs inside are re-batched by the engine
    #: None = selectable through the ``task`` / ``readout`` options
    fixed_task: ClassVar[str | None] = None
    fixed_readout: ClassVar[str | None] = None
    default_task: ClassVar[str] = "rating"
    default_readout: ClassVar[str] = "soft"
    template_prefix: ClassVar[str] = ""

    def __init__(self, *, model: str | None = None, seed: int = 0, rollouts: int = 1, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int | None = None, task: str | None = None,
                 readout: str | None = None,
                 scale: str = "1-5", template: str | None = None, system: str | None = None,
                 both_orders: bool = False, engine: str | Engine | None = None,
                 engine_options: dict[str, Any] | None = None):
        """Options (``-S key=value``):

        ``rollouts`` reasoning traces per prompt, score = their mean (Mean@k);
        ``temperature``/``top_p`` sampling (temperature 0 = greedy, one rollout only);
        ``max_new_tokens`` reasoning budget before the answer is forced (0 = prefill-only
        scoring, no reasoning; default: the checkpoint's ``generation_config.json``
        ``max_new_tokens`` when it sets one, else 512); ``task`` rating|pairwise and ``readout`` soft|hard where the
        scorer lets you choose; ``scale`` rating scale such as 1-5 or 1-7; ``template`` a
        shipped template name or a .txt path; ``system`` an optional system prompt;
        ``both_orders`` (pairwise) also show the candidate first and average.

        ``engine``: an engine name (default ``transformers``) or an :class:`Engine` instance;
        ``engine_options``: that engine's options (``-S`` on the command line takes both kinds).
        """
        super().__init__(seed=int(seed), model=model)
        if not model:
            raise ValueError(needs_model_hint(engine))
        self.task = self._choose("task", task, self.fixed_task, self.default_task, TASKS)
        self.readout = self._choose("readout", readout, self.fixed_readout, self.default_readout, READOUTS)
        self.rollouts = int(rollouts)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens if max_new_tokens is not None else default_budget(model))
        if self.rollouts < 1:
            raise ValueError("rollouts must be >= 1")
        if self.temperature < 0 or not (0 < self.top_p <= 1):
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")
        if self.rollouts > 1 and self.temperature == 0:
            raise ValueError("greedy decoding (temperature 0) gives identical rollouts; use temperature > 0 with rollouts > 1")
        if self.max_new_tokens < 0:
            raise ValueError("max_new_tokens must be >= 0")
        if self.max_new_tokens == 0 and (self.rollouts > 1 or self.readout == "hard"):
            raise ValueError("max_new_tokens 0 is prefill-only soft scoring: one rollout, soft read-out")
        self.scale = str(RatingScale.parse(scale))
        self.template = template or prompts.DEFAULT_TEMPLATES[self.template_prefix + self.task]
        prompts.load_template(self.template)  # fail early on a bad name
        want = 1 if self.task == "rating" else 2
        if prompts.n_images(self.template) != want:
            raise ValueError(f"template {self.template!r} shows {prompts.n_images(self.template)} images; "
                             f"the {self.task} task needs {want}")
        self.system = system
        self.both_orders = bool(both_orders)
        if self.both_orders and self.task != "pairwise":
            raise ValueError("both_orders applies to the pairwise task only")
        self.engine = self._make_engine(engine, dict(engine_options or {}))
        self.engine.check_spec(self.max_new_tokens)
        self.batch_size = int(self.engine.batch_size or type(self).batch_size)
        self.anchor_pairwise = self.task == "pairwise" and self.readout == "soft"
        self._loaded = False
        self._engine_summary: dict | None = None
        self._bias: list[float] = []

    def _make_engine(self, engine, opts: dict[str, Any]) -> Engine:
        if isinstance(engine, Engine):
            if opts:
                raise ValueError("engine_options go with an engine name, not an engine instance")
            if engine.model is None:
                engine.model = self.model
            return engine
        from prefbench.registry import check_types, engine_options, load_engine

        name = engine or self.default_engine
        accepted = engine_options(name)
        unknown = sorted(set(opts) - set(accepted))
        if unknown:
            raise ValueError(f"engine {name!r} has no option(s) {', '.join(unknown)}; "
                             f"its options: {', '.join(sorted(accepted))}")
        check_types(f"engine {name!r}", accepted, opts)
        return load_engine(name)(model=self.model, **opts)

    # -- identity ---------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The scorer's options and its engine's (the engine's name is in the spec)."""
        out = super().params()
        out.pop("engine", None)
        out.pop("engine_options", None)
        out.update(self.engine.params())
        return out

    @property
    def transport_params(self) -> tuple[str, ...]:
        return tuple(self.engine.transport_params)

    @staticmethod
    def _choose(name, value, fixed, default, allowed):
        if fixed is not None:
            if value not in (None, fixed):
                raise ValueError(f"this scorer's {name} is {fixed!r}")
            return fixed
        value = value or default
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        return value

    def model_info(self) -> dict:
        return self.engine.model_info()

    def prompt_template_hash(self) -> str:
        return prompts.template_hash(
            [self.template], task=self.task, scale=self.scale if self.task == "rating" else None,
            answer_tokens=self._candidates(), system=self.system, answer_prefix=prompts.ANSWER_PREFIX)

    def _candidates(self) -> tuple[str, ...]:
        return RatingScale.parse(self.scale).tokens if self.task == "rating" else PAIRWISE_TOKENS

    # -- lifecycle --------------------------------------------------------------------------
    def setup(self) -> None:
        self.engine.load(self._candidates())
        self._loaded = True

    def close(self) -> None:
        if self._loaded:  # keep the engine's counters for summary(), called after close()
            self._engine_summary = self.engine.summary()
            self.engine.close()
            self._loaded = False

    def summary(self) -> dict:
        out: dict[str, Any] = {"readout": self.readout, "task": self.task, "rollouts": self.rollouts}
        engine = self._engine_summary if not self._loaded and self._engine_summary else self.engine.summary()
        out["engine"] = engine
        if engine.get("image_encodings_shared"):
            # distinct images encoded by the vision tower vs slots served from them (anchors, rollouts)
            out["images_encoded"] = engine.get("images_encoded")
            out["image_encodings_shared"] = engine["image_encodings_shared"]
        if self.task == "pairwise":
            # whether an item's comparisons reuse the anchor's KV prefix (False, True, or the server's cache)
            out["anchor_kv_prefix_sharing"] = engine.get("prefix_sharing", False)
        if self._bias:
            out["position_bias"] = float(np.mean(self._bias))
            out["position_bias_n"] = len(self._bias)
        return out

    # -- scoring ----------------------------------------------------------------------------
    def score_batch(self, tasks):
        results: list[dict[int, ImageResult]] = [{} for _ in tasks]
        jobs: list[Job] = []
        owners: list[tuple[int, int, str]] = []  # (task index, image index, order)
        anchors: dict[int, int] = {}
        for t, (item, indices) in enumerate(tasks):
            if self.task == "rating":
                images, failed = self.load_images(item, indices)
                results[t].update(failed)
                msgs = prompts.rating_messages(item.prompt, RatingScale.parse(self.scale), self.template, self.system)
                for k in indices:
                    if k in images:
                        jobs.append(Job(msgs, [images[k]], f"{item.item_id}\0{k}", [f"{item.item_id}\0{k}"]))
                        owners.append((t, k, "single"))
                continue
            images, failed = self._pairwise_images(item, indices)
            anchor = anchor_index(self.seed, item, usable=list(images))
            if anchor is None:
                for k in indices:
                    results[t][k] = failed.get(k) or ImageResult.failed("no decodable image to use as anchor")
                continue
            anchors[t] = anchor
            msgs = prompts.pairwise_messages(item.prompt, self.template, self.system)
            for k in indices:
                if k in failed:
                    results[t][k] = failed[k]
                elif k == anchor:
                    results[t][k] = ImageResult(0.5, prob=0.5, anchor_index=anchor, detail={"anchor": True})
                else:
                    ka, kc = f"{item.item_id}\0{anchor}", f"{item.item_id}\0{k}"
                    jobs.append(Job(msgs, [images[anchor], images[k]], f"{item.item_id}\0{anchor}\0{k}\0ac", [ka, kc]))
                    owners.append((t, k, "anchor_first"))
                    if self.both_orders:
                        jobs.append(Job(msgs, [images[k], images[anchor]], f"{item.item_id}\0{anchor}\0{k}\0ca", [kc, ka]))
                        owners.append((t, k, "candidate_first"))
        spec = GenerationSpec(candidates=self._candidates(), budget=self.max_new_tokens, rollouts=self.rollouts,
                              temperature=self.temperature, top_p=self.top_p,
                              tail_tokens=8 if self.readout == "hard" else 0, seed=self.seed)
        rows = self.engine.generate(jobs, spec) if jobs else []
        grouped: dict[tuple[int, int], list[tuple[str, list]]] = {}
        for (t, k, order), job_rows in zip(owners, rows):
            grouped.setdefault((t, k), []).append((order, job_rows))
        for (t, k), parts in grouped.items():
            results[t][k] = self._image_result(parts, anchors.get(t))
        return results

    def _pairwise_images(self, item: Item, indices: Sequence[int]):
        """Decode the requested images plus whatever the anchor choice needs."""
        images, failed = {}, {}

        def get(k):
            if k in images or k in failed:
                return k in images
            try:
                images[k] = item.images[k].open()
            except ImageError as exc:
                failed[k] = ImageResult.failed(str(exc))
            return k in images

        for k in indices:
            get(k)
        # the anchor is the first decodable image in the seeded order: decode in that order
        key = int.from_bytes(hashlib.sha256(item.item_id.encode()).digest()[:8], "little")
        for k in np.random.default_rng([self.seed, key]).permutation(item.n_images):
            if get(int(k)):
                break
        return images, failed

    def _rollout_value(self, row, order: str) -> tuple[float | None, dict]:
        """(score or None, rollout detail) for one rollout."""
        rec: dict[str, Any] = {"text": row.text, "generated_tokens": row.generated_tokens}
        if order != "single":
            rec["order"] = order
        if row.forced:
            rec["forced"] = True
        if row.missed:
            rec["missed_answer_position"] = True
        rec.update(row.trace)
        values = [int(c) for c in self._candidates()]
        if row.answer_logits is not None:
            probs = _softmax(row.answer_logits)
            rec["probs"] = [round(float(p), 6) for p in probs]
            rec["answer_mass"] = round(float(row.answer_mass), 6)
        parsed = prompts.parse_answer(row.text, values) if self.readout == "hard" else None
        if self.readout == "soft":
            if row.answer_logits is None:
                return None, rec
            if self.task == "rating":
                value = float(np.dot(values, probs))
            else:
                p1 = float(probs[1])
                rec["p1"] = p1
                value = p1 if order == "anchor_first" else 1.0 - p1
        else:
            rec["parsed"] = parsed.value
            rec["format_ok"] = parsed.format_ok
            if parsed.value is None:
                return None, rec
            value = float(parsed.value)
            if self.task == "pairwise" and order == "candidate_first":
                value = 1.0 - value
        rec["score"] = value
        return value, rec

    def _image_result(self, parts: list[tuple[str, list]], anchor: int | None) -> ImageResult:
        failures = [row for _, rows in parts for row in rows if row.error]
        if failures:
            # Mean@k needs all k rollouts: an image with a failed rollout is an error; a transient
            # failure (retryable) is retried on the next `prefbench run`
            return ImageResult.failed(failures[0].error, retryable=all(r.retryable for r in failures),
                                      anchor_index=anchor, failed_rollouts=len(failures),
                                      rollouts=[dict(r.trace) for r in failures])
        rollouts, values, by_order, reasons, order_values = [], [], {}, [], {}
        for order, job_rows in parts:
            for row in job_rows:
                value, rec = self._rollout_value(row, order)
                rollouts.append(rec)
                if value is not None:
                    values.append(value)
                    if "p1" in rec:
                        by_order.setdefault(order, []).append(rec["p1"])
                        order_values.setdefault(order, []).append(value)
                elif row.no_answer_reason:
                    reasons.append(row.no_answer_reason)
        detail: dict[str, Any] = {
            "rollouts": rollouts,
            "rollout_scores": [r.get("score") for r in rollouts],
        }
        n_forced = sum(1 for r in rollouts if r.get("forced"))
        if n_forced:
            detail["forced_rollouts"] = n_forced
        n_bad = len(rollouts) - len(values)
        if n_bad:
            detail["unparsed_rollouts"] = n_bad
        rows = [row for _, job_rows in parts for row in job_rows]
        typed = {"anchor_index": anchor, "forced": bool(n_forced),
                 "generated_tokens": sum(r["generated_tokens"] for r in rollouts),
                 "prompt_tokens": _total(r.prompt_tokens for r in rows),
                 "vision_tokens": _total(r.vision_tokens for r in rows)}
        if not values:
            if reasons and len(reasons) == len(rollouts):
                reason = reasons[0]
            else:
                reason = ("no rollout reached an answer position" if self.readout == "soft"
                          else "no rollout gave a valid answer")
            return ImageResult(None, "unparsed", reason, detail, **typed)
        if len(by_order) == 2:
            self._bias.append(float(np.mean(by_order["anchor_first"]) + np.mean(by_order["candidate_first"]) - 1))
            typed["order_probs"] = {o: float(np.mean(v)) for o, v in sorted(order_values.items())}
        score = float(np.mean(values))
        prob = score if anchor is not None and self.readout == "soft" else None
        if not math.isfinite(score):
            return ImageResult(None, "error", "non-finite score", detail, **typed)
        return ImageResult(score, detail=detail, prob=prob, **typed)


class ExpectedRatingScorer(VLMScorer):
    """Soft rating: score = sum_r r * softmax(rating-token logits) at the answer position."""

    name = "expected_rating"
    fixed_task, fixed_readout = "rating", "soft"


class AnchorPairwiseScorer(VLMScorer):
    """Anchor comparisons: score = P("1") (candidate better than the anchor); anchor = 0.5."""

    name = "anchor_pairwise"
    anchor_pairwise = True
    fixed_task, fixed_readout = "pairwise", "soft"


class NaiveSamplingScorer(VLMScorer):
    """The discrete answer parsed from the generated text (the paper's "without soft reward")."""

    name = "naive_sampling"
    fixed_readout = "hard"


class ZeroShotScorer(VLMScorer):
    """The untrained instruct model with plain reasoning prompts; soft or hard read-out."""

    name = "zero_shot"
    template_prefix = "zero_shot_"


def _total(values) -> int | None:
    """The sum of the counts an engine reported; None when it reported none."""
    known = [v for v in values if v is not None]
    return int(sum(known)) if known else None
