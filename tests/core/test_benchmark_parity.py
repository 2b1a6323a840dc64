"""The 2025-26 conventions through ``prefbench evaluate``'s code path, on the rules as stated.

Parity with the official code itself lives in ``tests/core/test_golden.py`` (numbers produced by
the official functions, ``scripts/make_golden.py``). These tests cover what the golden inputs do
not: synthetic data in each set's published layout going through the loader, the scores or
verdict file and the convention; CIs; the judgements prefbench derives from scores and from a
pairwise scorer's per-order probabilities; and the two rules no official function exists for
(HPDv3's README rule and UnifiedReward's "Acc."), each stated plainly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from prefbench.data import load_dataset
from prefbench.evaluate import evaluate_file
from tests.fixtures import benchmarks as bm

TOL = 1e-12


def _evaluate(tmp_path, dataset, split, scores, convention=None, elements=None, verdicts=None, data_dir=None):
    data = load_dataset(dataset, split, data_dir or tmp_path, with_images=False)
    sfile = bm.scores_file(tmp_path / "scores.jsonl", data, scores, elements) if scores is not None else None
    vfile = None
    if verdicts is not None:
        vfile = tmp_path / "verdicts.jsonl"
        vfile.write_text("".join(json.dumps(v) + "\n" for v in verdicts))
    return evaluate_file(dataset, sfile, split, data_dir or tmp_path, convention, n_resamples=200,
                         verdicts_path=vfile), data


def _pair_scores(data, seed, ties=True):
    rng = np.random.default_rng(seed)
    # rounded so that model ties and repeated |s0 - s1| occur (the sweep's duplicate handling)
    return {(it.item_id, k): float(np.round(rng.normal(), 1) if ties else rng.normal())
            for it in data.items for k in range(2)}


def _h_m(data, scores):
    h = [0 if it.ranks[0] == it.ranks[1] else (1 if it.ranks[0] < it.ranks[1] else -1) for it in data.items]
    m = [scores[(it.item_id, 0)] - scores[(it.item_id, 1)] for it in data.items]
    return h, m


@pytest.fixture
def genai_dir(tmp_path):
    bm.write_genai_bench(tmp_path, n=120, seed=3)
    return tmp_path


def test_tau_and_diff_through_evaluate(genai_dir):
    # the genai_bench loader's labels (both-bad counted as a tie) and the file path give the same
    # numbers as the conventions on (h, m) directly; the rules themselves are golden-tested
    from prefbench.metrics import per_prompt

    data = load_dataset("genai_bench", "test_v1", genai_dir, with_images=False)
    scores = _pair_scores(data, 0)
    h, m = _h_m(data, scores)
    ranks = [[1, 2] if x > 0 else [2, 1] if x < 0 else [1, 1] for x in h]
    ids = [str(k) for k in range(len(h))]
    for name in ("tau", "diff"):
        out, _ = _evaluate(genai_dir, "genai_bench", "test_v1", scores, name)
        assert out["accuracy"] == pytest.approx(per_prompt(name, ids, ranks, [[x, 0.0] for x in m]).accuracy, abs=TOL)
        assert out["ci_low"] <= out["accuracy"] <= out["ci_high"]
    assert "tie_epsilon" in _evaluate(genai_dir, "genai_bench", "test_v1", scores, "tau")[0]


def test_acc_with_ties_wrong_states_unifiedrewards_rule(genai_dir):
    # UnifiedReward's "Acc." (test_qwen_genAI_bench_image.py), as a rule: a tie or both-bad vote adds
    # to the denominator and is never correct; otherwise correct iff the judge names the voted image.
    data = load_dataset("genai_bench", "test_v1", genai_dir, with_images=False)
    scores = _pair_scores(data, 5)
    correct = num_all = 0
    for it in data.items:
        num_all += 1
        if "both" in it.label or "tie" in it.label:
            continue
        better = 0 if scores[(it.item_id, 0)] > scores[(it.item_id, 1)] else (
            1 if scores[(it.item_id, 0)] < scores[(it.item_id, 1)] else None)
        correct += better == (0 if "left" in it.label else 1)
    out, _ = _evaluate(genai_dir, "genai_bench", "test_v1", scores, "acc_with_ties_wrong")
    assert out["accuracy"] == pytest.approx(correct / num_all, abs=TOL)


def test_genai_judge_from_verdicts_and_from_scores(genai_dir):
    # a verdict file is parsed as GenAI-Bench's parse_response does (golden-tested); scores become
    # [[A>B]] / [[B>A]] / [[A=B]], and [[A=B]] is right on a tie or a both-bad vote
    data = load_dataset("genai_bench", "test_v1", genai_dir, with_images=False)
    accept = {"leftvote": ("[[A>>B]]", "[[A>B]]"), "rightvote": ("[[B>>A]]", "[[B>A]]"),
              "tievote": ("[[A=B]]", "[[A=B=Good]]"), "bothbad_vote": ("[[A=B]]", "[[A=B=Bad]]")}
    answers = ["[[A>B]]", "[[B>A]]", "[[A=B=Good]]", "[[A=B=Bad]]", "I cannot tell"]
    responses = [answers[k % len(answers)] for k in range(len(data.items))]
    verdicts = [{"prompt_id": it.item_id, "verdict": r} for it, r in zip(data.items, responses, strict=True)]
    out, _ = _evaluate(genai_dir, "genai_bench", "test_v1", None, "genai_judge", verdicts=verdicts)
    expected = np.mean([r in accept[it.label] for r, it in zip(responses, data.items, strict=True)])
    assert out["accuracy"] == pytest.approx(expected, abs=TOL)
    assert out["n_unparsed_verdicts"] == responses.count("I cannot tell") > 0
    assert "wrong" in out["unparsed_rule"]
    scores = _pair_scores(data, 1)
    from_scores = [("[[A>B]]" if m > 0 else "[[B>A]]" if m < 0 else "[[A=B]]") for m in _h_m(data, scores)[1]]
    out, _ = _evaluate(genai_dir, "genai_bench", "test_v1", scores, "genai_judge")
    assert out["accuracy"] == pytest.approx(
        np.mean([r in accept[it.label] for r, it in zip(from_scores, data.items, strict=True)]), abs=TOL)


def _mmrb2_accuracy(predictions: dict, bench: dict) -> tuple[float, int]:
    """MMRB2's position-consistent rule, stated plainly: every non-empty judgement counts once, the
    reverse one read in the reversed presentation's terms (A and B swapped)."""
    correct = total = 0
    for pair in bench["pairs"]:
        for order, judged in predictions.get(pair["id"], {}).items():
            if judged:
                total += 1
                correct += ({"A": "B", "B": "A"}.get(judged, judged) if order == "reverse" else judged) == pair["chosen"]
    return correct / total, total


def test_mmrb2_from_scores_counts_each_order_once(tmp_path):
    bench = bm.write_mmrb2(tmp_path, n=30, seed=4)
    data = load_dataset("mmrb2", "t2i", tmp_path, with_images=False)
    scores = _pair_scores(data, 3)
    predictions = {}
    for it in data.items:
        m = scores[(it.item_id, 0)] - scores[(it.item_id, 1)]
        fwd = "A" if m > 0 else "B" if m < 0 else "tie"
        rev = {"A": "B", "B": "A"}.get(fwd, fwd)  # the reversed presentation names the other position
        predictions[it.item_id] = {"forward": fwd, "reverse": rev}
    accuracy, total = _mmrb2_accuracy(predictions, bench)
    out, _ = _evaluate(tmp_path, "mmrb2", "t2i", scores, "mmrb2")
    assert out["accuracy"] == pytest.approx(accuracy, abs=TOL)
    assert out["n_pairs"] == total == 60


def test_mmrb2_from_a_pairwise_scorer_in_both_orders(tmp_path):
    # a pairwise scorer run with both_orders records P(candidate beats anchor) per presentation
    # order: two judgements per pair, each in the order the scorer saw, as MMRB2's protocol asks
    from prefbench.metrics import accuracy_for

    bench = bm.write_mmrb2(tmp_path, n=40, seed=5)
    data = load_dataset("mmrb2", "t2i", tmp_path, with_images=False)
    rng = np.random.default_rng(6)
    scores, orders, predictions = {}, {}, {}
    for it in data.items:
        anchor = int(rng.integers(2))
        c = 1 - anchor
        probs = {"anchor_first": float(rng.choice([0.2, 0.5, 0.7, 0.9])),
                 "candidate_first": float(rng.choice([0.1, 0.4, 0.5, 0.8]))}
        scores[(it.item_id, anchor)], scores[(it.item_id, c)] = 0.5, float(np.mean(list(probs.values())))
        orders[(it.item_id, c)] = probs
        judged = {}
        for order, first in (("forward", 0), ("reverse", 1)):
            p = probs["candidate_first" if first == c else "anchor_first"]
            winner = c if p > 0.5 else (anchor if p < 0.5 else None)
            own = "tie" if winner is None else "AB"[winner]
            # the official file states the reverse judgement in the reversed presentation's terms
            judged[order] = own if order == "forward" else {"A": "B", "B": "A"}.get(own, own)
        predictions[it.item_id] = judged
    accuracy, total = _mmrb2_accuracy(predictions, bench)
    out, _ = accuracy_for(data, scores, "mmrb2", n_resamples=200, outputs={"order_probs": orders})
    assert out["accuracy"] == pytest.approx(accuracy, abs=TOL)
    assert out["n_pairs"] == total == 80
    # the same scores without the per-order judgements count the averaged verdict twice: not the same
    plain, _ = accuracy_for(data, scores, "mmrb2", n_resamples=200)
    assert plain["accuracy"] != pytest.approx(accuracy, abs=TOL)


def test_hpdv3_pair_accuracy(tmp_path):
    # HPSv3's README rule (no evaluation function is published): the share of pairs whose
    # path1 scores strictly above path2; a model tie is wrong.
    bm.write_hpdv3(tmp_path, n=50)
    data = load_dataset("hpdv3", "test", tmp_path, with_images=False)
    scores = _pair_scores(data, 7)
    expected = np.mean([scores[(it.item_id, 0)] > scores[(it.item_id, 1)] for it in data.items])
    out, _ = _evaluate(tmp_path, "hpdv3", "test", scores)
    assert out["convention"] == "hpdv3" and out["accuracy"] == pytest.approx(expected, abs=TOL)
