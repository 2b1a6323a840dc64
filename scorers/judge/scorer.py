"""The ``judge`` scorer: a generative judge (a :mod:`judge protocol <prefbench.judges>`) run on an engine.

``prefbench run --scorer judge -S protocol=NAME [-S mode=anchor|round_robin|pairs] [-S readout=hard|soft]``
renders the protocol's pinned prompt (or ``-S template=FILE``) for each comparison (pairwise) or
image (pointwise), asks the engine (``--engine transformers|openai|vllm``) for ``rollouts`` texts,
and reads each one:

- ``hard``: the text is generated freely (no answer position, nothing forced: the judge writes as
  it would in its own harness) and parsed by the protocol's parser;
- ``soft``: the engine reads the candidate tokens' probabilities at the protocol's answer position
  (:class:`~prefbench.engines.base.AnswerFormat`: e.g. after ``<answer>Image `` for
  UnifiedReward-Think, forced there when the reasoning budget runs out; VQAScore's first token),
  and the protocol turns them into P(the image shown first wins) or a score.

A parse failure (or a soft read-out with no candidate token) is counted and handled by the policy
(``on_parse_failure``: ``official`` = the protocol's own, ``wrong``, ``exclude``, ``neutral``);
:mod:`.plan` turns judgements into per-image scores with the rules of ``prefbench evaluate
--judge-outputs``. Every image's sample row lists its judgements: text, what was parsed, the policy
applied and what it counted as.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from prefbench.engines.base import AnswerFormat, Engine, GenerationSpec, Job
from prefbench.judges.base import Parsed
from prefbench.judges.judgements import Judgement, JudgeTally, apply_policy, judgement_record, read_soft
from prefbench.scorers.base import ImageResult
from prefbench.scorers.judge.plan import (
    MODES,
    Comparison,
    pairwise_outcomes,
    plan,
    pointwise_outcomes,
)
from prefbench.scorers.vlm.scorers import VLMScorer, anchor_index, default_budget, needs_model_hint

READOUTS = ("hard", "soft")


class JudgeScorer(VLMScorer):
    """A generative judge protocol as a scorer (see the module docstring)."""

    name = "judge"

    def __init__(self, *, protocol: str | None = None, mode: str | None = None, readout: str | None = None,
                 both_orders: bool = False, on_parse_failure: str = "official", template: str | None = None,
                 model: str | None = None, seed: int = 0, rollouts: int = 1, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int | None = None, system: str | None = None,
                 engine: str | Engine | None = None, engine_options: dict[str, Any] | None = None):
        """Options (``-S key=value``): ``protocol`` (required; ``prefbench list`` shows them);
        ``mode`` (pairwise protocols) ``anchor`` (default: N-1 comparisons with a seeded anchor,
        which scores 0.5), ``round_robin`` (every pair; score = win rate) or ``pairs`` (two-image
        items, the benchmark's own pair); ``both_orders`` shows each pair both ways; ``readout``
        ``hard`` or ``soft`` (default: the one the project reports); ``on_parse_failure``
        ``official|wrong|exclude|neutral``; ``template`` a prompt file instead of the pinned one;
        ``rollouts``, ``temperature``, ``top_p``, ``max_new_tokens`` (hard: the text's length
        limit; soft: the reasoning budget before the answer is forced, 0 = prefill only),
        ``system``; ``engine`` and its options as for the VLM scorers."""
        from prefbench.errors import UsageError
        from prefbench.judges import lookup
        from prefbench.judges.render import check_template
        from prefbench.judges.templates import template as fetch_template

        super(VLMScorer, self).__init__(seed=int(seed), model=model)
        if not protocol:
            raise UsageError("the judge scorer needs -S protocol=NAME (`prefbench list` shows the judge protocols)")
        if not model:
            raise ValueError(needs_model_hint(engine))
        self.proto = lookup(protocol)
        self.protocol = protocol
        pairwise = self.proto.kind == "pairwise"
        if pairwise:
            mode = mode or "anchor"
            if mode not in MODES:
                raise UsageError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        elif mode not in (None, "pointwise"):
            raise UsageError(f"judge protocol {protocol!r} is pointwise: it scores each image; mode applies to "
                             "pairwise protocols")
        elif both_orders:
            raise UsageError(f"judge protocol {protocol!r} is pointwise: both_orders applies to pairwise protocols")
        self.mode = mode if pairwise else "pointwise"
        self.readout = readout or self.proto.readout
        if self.readout not in READOUTS:
            raise UsageError(f"readout must be one of {', '.join(READOUTS)}, got {self.readout!r}")
        if self.readout == "soft" and self.proto.answer is None:
            raise UsageError(f"judge protocol {protocol!r} has no soft read-out (its verdict is not one answer "
                             "token); use readout=hard")
        self.policy = self.proto.policy(on_parse_failure)
        self.on_parse_failure = on_parse_failure
        self.both_orders = bool(both_orders)
        self.rollouts, self.temperature, self.top_p = int(rollouts), float(temperature), float(top_p)
        first_token = self.readout == "soft" and self.proto.answer.prefix == ""
        budget = max_new_tokens if max_new_tokens is not None else default_budget(model)
        self.max_new_tokens = 0 if first_token else int(budget)
        if self.rollouts < 1 or self.temperature < 0 or not (0 < self.top_p <= 1):
            raise ValueError("rollouts must be >= 1, temperature >= 0 and top_p in (0, 1]")
        if self.rollouts > 1 and (self.temperature == 0 or self.max_new_tokens == 0):
            raise ValueError("rollouts > 1 needs sampling: temperature > 0 and a reasoning budget (max_new_tokens > 0)")
        if self.max_new_tokens < 0 or (self.readout == "hard" and self.max_new_tokens == 0):
            raise ValueError("max_new_tokens must be >= 0, and > 0 for the hard read-out (the judge's text)")
        self.template = template
        self.system = system
        self.text, self.template_record = fetch_template(self.proto, template)
        check_template(self.proto, self.text, template or self.proto.template.describe())
        self.answer = AnswerFormat.after(self.proto.answer.prefix if self.readout == "soft" else None)
        self.engine = self._make_engine(engine, dict(engine_options or {}))
        self.engine.check_spec(self.max_new_tokens)
        self.batch_size = int(self.engine.batch_size or type(self).batch_size)
        self.anchor_pairwise = self.mode == "anchor"
        self._loaded = False
        self._engine_summary: dict | None = None
        self._tally = JudgeTally()

    # -- identity ---------------------------------------------------------------------------
    def prompt_template_hash(self) -> str:
        blob = {"protocol": self.proto.name, "text_sha256": self.template_record["text_sha256"],
                "layout": repr(self.proto.layout), "answer": repr(self.answer), "system": self.system}
        if self.readout == "soft":
            blob["candidates"] = list(self.proto.answer.candidates)
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()

    def _candidates(self) -> tuple[str, ...]:
        return tuple(self.proto.answer.candidates) if self.readout == "soft" else ()

    def setup(self) -> None:
        self.engine.load(self._candidates(), answer=self.answer)
        self._loaded = True

    def summary(self, tally: JudgeTally | None = None) -> dict:
        """The run-level facts: options, template, policy, and the judgements' counts and position
        bias (this process's, or ``tally``'s)."""
        tally = tally or self._tally
        engine = self._engine_summary if not self._loaded and self._engine_summary else self.engine.summary()
        proto = self.proto
        out: dict[str, Any] = {
            "protocol": proto.name, "protocol_kind": proto.kind, "protocol_source": proto.source,
            "mode": self.mode, "readout": self.readout, "both_orders": self.both_orders, "rollouts": self.rollouts,
            "template": dict(self.template_record),
            "on_parse_failure": self.on_parse_failure, "policy": self.policy,
            "policy_source": proto.policy_source if self.policy == proto.official_policy else "on_parse_failure",
            **tally.counts(),
        }
        if self.readout == "soft":
            out["answer_position"] = {"prefix": proto.answer.prefix, "candidates": list(proto.answer.candidates),
                                      "score": proto.answer.score}
        if proto.kind == "pairwise":
            out["position_bias"] = tally.position_bias()
        out["engine"] = engine
        return out

    # -- scoring ----------------------------------------------------------------------------
    def score_batch(self, tasks):
        from prefbench.judges.render import render_messages

        results: list[dict[int, ImageResult]] = [{} for _ in tasks]
        jobs: list[Job] = []
        owners: list[tuple[int, Comparison]] = []
        anchors: dict[int, int | None] = {}
        for t, (item, indices) in enumerate(tasks):
            if self.mode in ("anchor", "round_robin") or self.mode == "pairs" and item.n_images == 2:
                images, failed = (self._pairwise_images(item, indices) if self.mode == "anchor"
                                  else self.load_images(item, range(item.n_images)))
            elif self.mode == "pairs":
                for k in indices:
                    results[t][k] = ImageResult.failed(
                        f"mode=pairs judges two-image items; this item has {item.n_images} images "
                        "(use mode=anchor or round_robin)")
                continue
            else:
                images, failed = self.load_images(item, indices)
            for k in indices:
                if k in failed:
                    results[t][k] = failed[k]
            anchor = anchor_index(self.seed, item, usable=list(images)) if self.mode == "anchor" else None
            anchors[t] = anchor
            msgs, order = render_messages(self.proto, self.text, item.prompt, self.system)
            for comp in plan(self.mode, indices, list(images), anchor, self.both_orders):
                shown = [comp.shown[i] for i in order]
                keys = [f"{item.item_id}\0{k}" for k in shown]
                jobs.append(Job(msgs, [images[k] for k in shown],
                                f"{item.item_id}\0{'|'.join(map(str, comp.shown))}\0judge", keys))
                owners.append((t, comp))
        spec = GenerationSpec(candidates=self._candidates(), budget=self.max_new_tokens, rollouts=self.rollouts,
                              temperature=self.temperature, top_p=self.top_p, seed=self.seed, answer=self.answer)
        rows = self.engine.generate(jobs, spec) if jobs else []
        by_task: dict[int, list[tuple[Comparison, list]]] = {}
        for (t, comp), job_rows in zip(owners, rows):
            by_task.setdefault(t, []).append((comp, job_rows))
        for t, (item, indices) in enumerate(tasks):
            wanted = [k for k in indices if k not in results[t]]
            if wanted:
                results[t].update(self._item_results(item.item_id, wanted, by_task.get(t, []), anchors.get(t)))
        return results

    def _judge(self, item_id: str, comp: Comparison, row) -> tuple[Judgement, dict]:
        """One rollout as a judgement (parsed, policy applied) and its record for the sample row."""
        record: dict[str, Any] = {"shown": list(comp.shown), "order": comp.order, "text": row.text}
        if row.forced:
            record["forced"] = True
        if self.readout == "soft":
            if row.answer_logits is None:
                record["answer_probs"] = {}
                parsed = Parsed(False, reason=row.no_answer_reason or ("a token swallowed the answer prefix"
                                                                       if row.missed else "no answer position"))
            else:
                probs = _candidate_probs(self.proto.answer.candidates, row.answer_logits, row.answer_mass)
                record["answer_probs"] = {c: float(f"{p:.6g}") for c, p in probs.items()}
                parsed = read_soft(self.proto, probs)
        else:
            try:
                parsed = self.proto.parse(row.text)
            except Exception as exc:  # noqa: BLE001 - a plugin's parser bug: that judgement fails, counted
                parsed = Parsed(False, reason=f"the protocol's parser raised {exc!r}"[:200])
        j = apply_policy(Judgement(0, item_id, comp.shown, parsed), self.proto, self.policy)
        if self.readout == "soft" and self.proto.kind == "pairwise" and not j.failed:
            j.soft, j.score = parsed.score, None
        record.update(judgement_record(j, self.proto.kind))
        return j, record

    def _item_results(self, item_id: str, wanted, parts, anchor) -> dict[int, ImageResult]:
        out: dict[int, ImageResult] = {}
        # a request that failed: the images it compared are errors (retried on the next run when transient);
        # the anchor's 0.5 does not depend on it
        for k in wanted:
            bad = [row for comp, rows in parts if k in comp.shown for row in rows if row.error]
            if bad and not (self.mode == "anchor" and k == anchor):
                out[k] = ImageResult.failed(bad[0].error, retryable=all(r.retryable for r in bad),
                                            anchor_index=anchor, failed_rollouts=len(bad))
        judgements, records, rows_of = [], {}, {}
        for comp, job_rows in parts:
            if any(row.error for row in job_rows):
                continue
            for row in job_rows:
                j, rec = self._judge(item_id, comp, row)
                judgements.append(j)
                records[id(j)] = rec
                rows_of[id(j)] = row
                self._tally.add(item_id, rec)
        if self.proto.kind == "pairwise":
            outcomes = pairwise_outcomes(judgements, wanted, anchor, self.mode)
        else:
            outcomes = pointwise_outcomes(judgements, wanted)
        for k in wanted:
            if k in out:
                continue
            o = outcomes.get(k)
            if o is None:
                out[k] = ImageResult.failed("no judgement of this image", "unparsed")
                continue
            rows = [rows_of[id(j)] for j in o.judgements]
            detail: dict[str, Any] = {"protocol": self.proto.name, "policy": self.policy,
                                      "judgements": [records[id(j)] for j in o.judgements]}
            if self.mode == "anchor" and k == anchor:
                detail["anchor"] = True
            n_failed = sum(j.failed for j in o.judgements)
            if n_failed:
                detail["parse_failures"] = n_failed
            typed = {"anchor_index": anchor, "forced": any(r.forced for r in rows),
                     "generated_tokens": sum(r.generated_tokens for r in rows) if rows else None,
                     "prompt_tokens": _total(r.prompt_tokens for r in rows),
                     "vision_tokens": _total(r.vision_tokens for r in rows)}
            if o.score is None:
                out[k] = ImageResult(None, "unparsed", o.reason, detail, **typed)
            elif not np.isfinite(o.score):
                out[k] = ImageResult(None, "error", "non-finite score", detail, **typed)
            else:
                out[k] = ImageResult(o.score, detail=detail, prob=o.score if self.mode == "anchor" else None,
                                     order_probs=o.order_probs, **typed)
        return out

    def summary_of_rows(self, rows) -> dict:
        """The summary over every sample row of the run (a resumed, merged or Ray-scored run's rows
        included): the judgements are counted from the records the rows list, not from this process."""
        from prefbench.judges.judgements import run_judgements

        tally = JudgeTally()
        for _, item_id, record in run_judgements(enumerate(rows)):
            if item_id is not None:
                tally.add(item_id, record)
        return self.summary(tally)


def _candidate_probs(candidates, logits, mass) -> dict[str, float]:
    """{candidate: probability} at the answer position: the softmax over the candidates' logits (or
    log-probabilities), scaled to their total probability in the full distribution where the engine
    knows it (VQAScore's P("Yes") is over the full vocabulary); a candidate the engine could not see
    (-inf) is left out."""
    x = np.asarray(logits, dtype=np.float64)
    seen = np.isfinite(x)
    if not seen.any():
        return {}
    p = np.exp(x[seen] - x[seen].max())
    p = p / p.sum() * (float(mass) if mass is not None else 1.0)
    return {c: float(v) for c, v in zip(np.asarray(candidates, dtype=object)[seen], p)}


def _total(values) -> int | None:
    known = [v for v in values if v is not None]
    return int(sum(known)) if known else None
