"""Raw judge outputs scored without re-inference: ``prefbench evaluate --judge-outputs FILE --protocol NAME``.

The file is JSONL, one judgement per row:

- pairwise protocols: ``{"prompt_id", "image_a", "image_b", "order", "text"}``; ``image_a`` and
  ``image_b`` are image indices as the dataset orders the item's images; ``order`` is ``forward``
  (the judge was shown ``image_a`` first: "Image 1", "A") or ``reverse`` (``image_b`` first);
- pointwise protocols: ``{"prompt_id", "image_index", "text"}``.

A ``judge`` run's ``samples.jsonl`` is read as such a file too (each judgement its rows list, once).

Each text is parsed by the protocol (:class:`~prefbench.judges.base.Parsed`). A text that does not
parse is a **parse failure**: counted, and handled by the policy (``official`` = the protocol's
own; ``wrong``, ``exclude``, ``neutral`` override it). The judgements then become what the
dataset's convention reads:

- GenAI-Bench's 4-way rule (``genai_judge``): one bracketed verdict per vote, turned into the
  dataset's left/right terms; ``wrong`` -> unparsed (counted wrong), ``neutral`` -> ``[[A=B]]``;
- MMRB2's position-consistent rule (``mmrb2``): each order is one judgement (``forward`` = response A
  shown first); ``wrong`` -> a judgement that is not the chosen one, ``exclude`` -> not counted,
  ``neutral`` -> a tie (counted, and not the chosen one: MMRB2 has no half credit);
- every other convention: per-image scores. Pointwise: the score. Pairwise: each image's mean
  outcome over its judgements (win 1, tie 0.5, loss 0: Pref-GRPO's win rate; both orders of a pair
  average); when every judgement of an item of three or more images shares one image (the anchor
  scheme) that anchor scores 0.5, as ``anchor_pairwise`` does. ``wrong`` makes the images of the
  failed judgement missing (a missing score counts against the scorer in every convention; on an
  item of more than two images that is stricter than one wrong pair); ``exclude`` drops the
  judgement, and the item when an image is left without one; ``neutral`` is a tie (pairwise) or the
  protocol's neutral score (pointwise).

Bad rows (bad JSON, unknown ``prompt_id``, an index out of range, a duplicate) are errors naming
the line. Images or pairs the file never judges are reported (missing scores count wrong; MMRB2
reports missing pairs as its own code does).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from prefbench.data import Split
from prefbench.errors import DataError, UsageError
from prefbench.judges.base import JudgeProtocol
from prefbench.judges.judgements import Judgement, JudgeTally, judgement_record, read_judgements

_SWAP = {"first": "second", "second": "first"}


# --- what the conventions read ------------------------------------------------------------------

def genai_verdicts(judgements: list[Judgement], split: Split, path: Path) -> tuple[dict, set]:
    """``{item_id: {"verdict": bracket or None}}`` in the dataset's left/right terms, and the items excluded."""
    from prefbench.judges.genai_bench import BRACKETS

    out: dict[str, dict] = {}
    excluded: set[str] = set()
    lines: dict[str, int] = {}
    for j in judgements:
        if j.item_id in lines:
            raise DataError(f"a second judgement of prompt_id {j.item_id!r} (first on line {lines[j.item_id]}): the "
                            "genai_judge rule reads one verdict per vote", path, j.line)
        lines[j.item_id] = j.line
        if j.action == "exclude":
            excluded.add(j.item_id)
            continue
        winner = None if j.action == "wrong" else j.decided
        if winner is not None and j.images[0] != 0:  # the right image was shown first
            winner = _SWAP.get(winner, winner)
        out[j.item_id] = {"verdict": BRACKETS[winner] if winner else None}
    absent = [it.item_id for it in split.items if it.item_id not in lines]
    if absent:
        raise DataError(f"{len(absent)} vote(s) of {split.dataset}/{split.split} have no judgement, "
                        f"e.g. {', '.join(absent[:5])}", path)
    return out, excluded


def mmrb2_verdicts(judgements: list[Judgement], split: Split) -> dict:
    """``{item_id: {"forward": ..., "reverse": ...}}``: each order one judgement, named in the order shown."""
    out: dict[str, dict] = {it.item_id: {} for it in split.items}
    for j in judgements:
        key = "forward" if j.images[0] == 0 else "reverse"
        if j.action == "exclude":
            value = None
        elif j.action == "wrong":
            value = "unparsed"
        else:
            value = {"first": "A", "second": "B"}.get(j.decided, "tie")
        out[j.item_id][key] = value
    return out


def pair_scores(judgements: list[Judgement], split: Split) -> tuple[dict, set, int]:
    """Per-image scores from pairwise judgements: ({(item_id, k): score}, excluded items, unjudged images)."""
    by_item: dict[str, list[Judgement]] = {}
    for j in judgements:
        by_item.setdefault(j.item_id, []).append(j)
    scores: dict = {}
    excluded: set[str] = set()
    unjudged = 0
    for item in split.items:
        js = by_item.get(item.item_id, [])
        judged = {k for j in js for k in j.images}
        kept = [j for j in js if j.action != "exclude"]
        covered = {k for j in kept for k in j.images}
        if judged - covered:  # an image lost every judgement it had
            excluded.add(item.item_id)
            continue
        unjudged += item.n_images - len(judged)
        usable = [j for j in kept if j.usable]
        shared = set.intersection(*(set(j.images) for j in kept)) if kept else set()
        anchor = next(iter(shared)) if item.n_images >= 3 and len(shared) == 1 and len(kept) >= 2 else None
        for k in range(item.n_images):
            own = [j.outcome_of(k) for j in usable if k in j.images]
            if k == anchor:
                scores[(item.item_id, k)] = 0.5
            elif own:
                scores[(item.item_id, k)] = float(np.mean(own))
        for j in kept:
            if j.action == "wrong":
                for k in j.images:
                    scores.pop((item.item_id, k), None)
                    scores[(item.item_id, k)] = math.nan
    return scores, excluded, unjudged


def point_scores(judgements: list[Judgement], split: Split) -> tuple[dict, set, int]:
    scores: dict = {}
    excluded: set[str] = set()
    for j in judgements:
        if j.action == "exclude":
            excluded.add(j.item_id)
        else:
            scores[(j.item_id, j.images[0])] = math.nan if j.action == "wrong" else float(j.score)
    unjudged = sum(1 for it in split.items if it.item_id not in excluded
                   for k in range(it.n_images) if (it.item_id, k) not in scores)
    return scores, excluded, unjudged


def position_bias(judgements: list[Judgement]) -> dict:
    """How often the image shown first wins (decided, parsed judgements), the mean P(shown first
    wins) of soft ones, and how often a pair judged in both orders gets the same winner both times:
    the figures a ``judge`` run reports (:class:`~prefbench.judges.judgements.JudgeTally`)."""
    tally = JudgeTally()
    for j in judgements:
        tally.add(j.item_id, {"shown": list(j.images), **judgement_record(j, "pairwise")}, soft=j.soft is not None)
    return tally.position_bias()


def judgement_rows(judgements: list[Judgement], protocol: JudgeProtocol) -> list[dict]:
    """One audit row per judgement: where it came from, what was read, whether it failed, the policy
    applied and what it counted as."""
    rows = []
    for j in judgements:
        row: dict = {"line": j.line, "prompt_id": j.item_id}
        if protocol.kind == "pairwise":
            row["shown"] = list(j.images)
        else:
            row["image_index"] = j.images[0]
        row.update(judgement_record(j, protocol.kind))
        rows.append(row)
    return rows


def evaluate_judge_outputs(
    dataset: str, path: Path, protocol: str, split: str | None = None, data_dir: Path | None = None,
    convention: str | None = None, tie_threshold: float = 0.0, n_resamples: int | None = None, seed: int | None = None,
    on_parse_failure: str = "official", read_out: str = "hard", parsed_out: Path | None = None,
    limit: int | None = None,
) -> dict:
    """The convention's accuracy and CI of a file of raw judge texts, with the parse-failure count and policy."""
    from prefbench.evaluate import evaluated_split
    from prefbench.judges import lookup
    from prefbench.metrics import DEFAULT_RESAMPLES, DEFAULT_SEED, accuracy_for, lookup_convention

    proto = lookup(protocol)
    policy = proto.policy(on_parse_failure)
    data, beyond = evaluated_split(dataset, split, data_dir, limit)
    convention = convention or data.convention
    rule = lookup_convention(convention)
    judgements = read_judgements(path, data, proto, policy, read_out, beyond)
    if parsed_out is not None:
        import json

        with open(parsed_out, "w", encoding="utf-8") as fh:
            for row in judgement_rows(judgements, proto):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    outputs: dict = {}
    scores: dict = {}
    unjudged = 0
    if rule.verdict_keys and proto.kind == "pointwise":
        raise UsageError(f"the {convention} convention reads a judge's pairwise verdicts; {proto.name} is pointwise: "
                         "choose a convention of per-image scores, e.g. --convention "
                         f"{'hpdv3' if convention == 'mmrb2' else 'diff'}")
    if rule.verdict_keys == ("verdict",):
        outputs["verdicts"], excluded = genai_verdicts(judgements, data, Path(path))
    elif rule.verdict_keys:
        outputs["verdicts"], excluded = mmrb2_verdicts(judgements, data), set()
    elif proto.kind == "pairwise":
        scores, excluded, unjudged = pair_scores(judgements, data)
    else:
        scores, excluded, unjudged = point_scores(judgements, data)
    kept = replace(data, items=[it for it in data.items if it.item_id not in excluded])
    if not kept.items:
        raise UsageError(f"every item of {data.dataset}/{data.split} was excluded: nothing left to score")
    try:
        metrics, _ = accuracy_for(kept, scores, convention, tie_threshold,
                                  DEFAULT_RESAMPLES if n_resamples is None else n_resamples,
                                  DEFAULT_SEED if seed is None else seed, outputs=outputs)
    except ValueError as exc:
        raise UsageError(f"{convention} on {data.dataset}/{data.split}: {exc}") from None
    failures = [j for j in judgements if j.failed]
    out = {"dataset": data.dataset, "split": data.split, **metrics, "judge_outputs": str(path),
           "protocol": proto.name, "protocol_kind": proto.kind, "read_out": read_out,
           "on_parse_failure": on_parse_failure,
           "policy": policy, "policy_rule": _rule(proto, policy),
           "n_judgements": len(judgements), "n_parse_failures": len(failures),
           "n_filled_by_fallback": sum(j.parsed.ok is False and policy == "fallback" for j in judgements),
           "n_excluded_items": len(excluded), "n_unjudged_images": unjudged,
           "parse_failure_lines": [j.line for j in failures][:20],
           "parse_failures": [{"line": j.line, "reason": j.parsed.reason} for j in failures][:20]}
    if limit is not None:
        out["limit"] = limit
    if proto.kind == "pairwise":
        out.update(position_bias(judgements))
    if parsed_out is not None:
        out["parsed_out"] = str(parsed_out)
    return out


def _rule(proto: JudgeProtocol, policy: str) -> str:
    what = {"wrong": "a parse failure counts against the judge",
            "exclude": "a parse failure is not counted (its item is dropped when an image is left unjudged)",
            "neutral": "a parse failure is a tie" if proto.kind == "pairwise"
            else f"a parse failure scores {proto.neutral_score}",
            "fallback": "a parse failure gets the protocol's fallback"}[policy]
    official = f" (the official policy: {proto.policy_source})" if policy == proto.official_policy else \
        f" (overrides the official '{proto.official_policy}')"
    return what + official
