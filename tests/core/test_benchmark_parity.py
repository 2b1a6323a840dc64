"""Every 2025-26 convention against the official evaluation code, on the same scores.

Synthetic data in each set's published layout goes through ``prefbench evaluate``'s code path
(the loader, the scores or verdict file, the convention); the official function (lifted verbatim
from ``tests/fixtures/official_src``) gets the same labels and scores. Agreement to 1e-12.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from prefbench.data import load_dataset
from prefbench.evaluate import evaluate_file
from tests.fixtures import benchmarks as bm
from tests.fixtures.official_code import official

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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tau_and_diff_match_videoalign(genai_dir, seed):
    va = official("KwaiVGI__VideoAlign", "calc_accuracy.py",
                  ["suff_stats", "calc_acc", "calc_accuracy_with_ties", "calc_accuracy_without_ties"])
    data = load_dataset("genai_bench", "test_v1", genai_dir, with_images=False)
    scores = _pair_scores(data, seed)
    h, m = _h_m(data, scores)
    tau, _ = _evaluate(genai_dir, "genai_bench", "test_v1", scores, "tau")
    diff, _ = _evaluate(genai_dir, "genai_bench", "test_v1", scores, "diff")
    assert tau["accuracy"] == pytest.approx(va.calc_accuracy_with_ties(h, m), abs=TOL)
    assert diff["accuracy"] == pytest.approx(va.calc_accuracy_without_ties(h, m), abs=TOL)
    assert tau["ci_low"] <= tau["accuracy"] <= tau["ci_high"]
    assert "tie_epsilon" in tau


def test_acc_with_ties_wrong_matches_unifiedreward_loop(genai_dir):
    # UnifiedReward's "Acc." loop (test_qwen_genAI_bench_image.py): a tie or both-bad vote adds to
    # the denominator and is never correct; otherwise correct iff the judge names the voted image.
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


def test_genai_judge_matches_parse_response(genai_dir):
    import re

    gb = official("TIGER-AI-Lab__GenAI-Bench", "inference.py", ["parse_response"], re=re)
    data = load_dataset("genai_bench", "test_v1", genai_dir, with_images=False)
    rng = np.random.default_rng(0)
    answers = ["[[A>B]]", "[[B>A]]", "[[A=B=Good]]", "[[A=B=Bad]]", "[[A>>B]]", "[[A=B]]", "I cannot tell",
               "Image A wins. [[B>A]]", "[[A>B]] then [[B>A]]", "[[tie]]"]
    responses = [str(rng.choice(answers)) for _ in data.items]
    expected = np.mean([gb.parse_response(r, it.label)[1] for r, it in zip(responses, data.items, strict=True)])
    verdicts = [{"prompt_id": it.item_id, "verdict": r} for it, r in zip(data.items, responses, strict=True)]
    out, _ = _evaluate(genai_dir, "genai_bench", "test_v1", None, "genai_judge", verdicts=verdicts)
    assert out["accuracy"] == pytest.approx(expected, abs=TOL)
    unparsed = sum(gb.parse_response(r, "leftvote")[0] is None for r in responses)
    assert out["n_unparsed_verdicts"] == unparsed > 0
    assert "wrong" in out["unparsed_rule"]
    # from scores: [[A>B]] / [[B>A]] / [[A=B]] (a model tie is right on a tie or a both-bad vote)
    scores = _pair_scores(data, 1)
    from_scores = [("[[A>B]]" if m > 0 else "[[B>A]]" if m < 0 else "[[A=B]]") for m in _h_m(data, scores)[1]]
    out, _ = _evaluate(genai_dir, "genai_bench", "test_v1", scores, "genai_judge")
    assert out["accuracy"] == pytest.approx(
        np.mean([gb.parse_response(r, it.label)[1] for r, it in zip(from_scores, data.items, strict=True)]), abs=TOL)


def _mmrb2_official():
    return official("facebookresearch__MMRB2", "evaluate/compute_scores/compute_accuracy.py",
                    ["TaskResult", "flip_judgement", "compute_task_accuracy"], dataclass=dataclass, Dict=dict, List=list)


def test_mmrb2_matches_compute_accuracy_on_verdicts(tmp_path):
    mm = _mmrb2_official()
    bench = bm.write_mmrb2(tmp_path, n=30, seed=1)
    rng = np.random.default_rng(2)
    predictions, verdicts = {}, []
    for k, pair in enumerate(bench["pairs"]):
        if k % 10 == 9:  # a pair the judge never answered: missing
            continue
        pred = {}
        for order in ("forward", "reverse"):
            j = str(rng.choice(["A", "B", "B", "A", "tie", ""]))
            pred[order] = [{"judgement": j}]
            verdicts.append({"prompt_id": pair["id"], "order": order, "verdict": j})
        predictions[pair["id"]] = pred
    ref = mm.compute_task_accuracy(predictions, bench, "t2i")
    out, _ = _evaluate(tmp_path, "mmrb2", "t2i", None, "mmrb2", verdicts=verdicts)
    assert out["accuracy"] == pytest.approx(ref.accuracy, abs=TOL)
    assert out["n_missing_pairs"] == ref.missing_pairs == 3
    assert out["n_pairs"] == ref.total_evaluated


def test_mmrb2_from_scores_counts_each_order_once(tmp_path):
    mm = _mmrb2_official()
    bench = bm.write_mmrb2(tmp_path, n=30, seed=4)
    data = load_dataset("mmrb2", "t2i", tmp_path, with_images=False)
    scores = _pair_scores(data, 3)
    predictions = {}
    for it in data.items:
        m = scores[(it.item_id, 0)] - scores[(it.item_id, 1)]
        fwd = "A" if m > 0 else "B" if m < 0 else "tie"
        rev = {"A": "B", "B": "A"}.get(fwd, fwd)  # the reversed presentation names the other position
        predictions[it.item_id] = {"forward": [{"judgement": fwd}], "reverse": [{"judgement": rev}]}
    ref = mm.compute_task_accuracy(predictions, bench, "t2i")
    out, _ = _evaluate(tmp_path, "mmrb2", "t2i", scores, "mmrb2")
    assert out["accuracy"] == pytest.approx(ref.accuracy, abs=TOL)
    assert out["n_pairs"] == ref.total_evaluated == 60


def test_mmrb2_from_a_pairwise_scorer_in_both_orders(tmp_path):
    # a pairwise scorer run with both_orders records P(candidate beats anchor) per presentation
    # order: two judgements per pair, each in the order the scorer saw, as MMRB2's protocol asks
    from prefbench.metrics import accuracy_for

    mm = _mmrb2_official()
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
            judged[order] = [{"judgement": own if order == "forward" else {"A": "B", "B": "A"}.get(own, own)}]
        predictions[it.item_id] = judged
    ref = mm.compute_task_accuracy(predictions, bench, "t2i")
    out, _ = accuracy_for(data, scores, "mmrb2", n_resamples=200, outputs={"order_probs": orders})
    assert out["accuracy"] == pytest.approx(ref.accuracy, abs=TOL)
    assert out["n_pairs"] == ref.total_evaluated == 80
    # the same scores without the per-order judgements count the averaged verdict twice: not the same
    plain, _ = accuracy_for(data, scores, "mmrb2", n_resamples=200)
    assert plain["accuracy"] != pytest.approx(ref.accuracy, abs=TOL)


def test_hpdv3_pair_accuracy(tmp_path):
    # HPSv3's README rule (no evaluation function is published): the share of pairs whose
    # path1 scores strictly above path2; a model tie is wrong.
    bm.write_hpdv3(tmp_path, n=50)
    data = load_dataset("hpdv3", "test", tmp_path, with_images=False)
    scores = _pair_scores(data, 7)
    expected = np.mean([scores[(it.item_id, 0)] > scores[(it.item_id, 1)] for it in data.items])
    out, _ = _evaluate(tmp_path, "hpdv3", "test", scores)
    assert out["convention"] == "hpdv3" and out["accuracy"] == pytest.approx(expected, abs=TOL)


def test_imagereward_per_prompt_matches_hpsv2_calc_imagereward(tmp_path, ir_annotation):
    import shutil

    hps = official("tgxs002__HPSv2", "hpsv2/src/training/train.py", ["calc_ImageReward"])
    shutil.copy(ir_annotation, tmp_path / "test.json")
    data = load_dataset("imagereward", "test", tmp_path, with_images=False)
    rng = np.random.default_rng(0)
    scores = {(it.item_id, k): float(np.round(rng.normal(), 1)) for it in data.items for k in range(it.n_images)}
    per_prompt = [hps.calc_ImageReward([scores[(it.item_id, k)] for k in range(it.n_images)], list(it.ranks))
                  for it in data.items if len(set(it.ranks)) > 1]
    out, _ = _evaluate(tmp_path, "imagereward", "test", scores, "imagereward_per_prompt")
    assert out["accuracy"] == pytest.approx(sum(per_prompt) / len(per_prompt), abs=TOL)


def test_genai_rank_matches_t2v_metrics(tmp_path):
    torch = pytest.importorskip("torch")
    from types import SimpleNamespace

    t2v = official("linzhiqiu__t2v_metrics", "genai_image_ranking.py",
                   ["rerank_human_scores", "compute_top1_acc_skill", "compute_top1_acc_group_skill"], np=np, torch=torch)
    bm.write_genai_rank(tmp_path, n_prompts=20, seed=2)
    data = load_dataset("genai_rank", "DALLE_3", tmp_path, with_images=False)
    rng = np.random.default_rng(1)
    s = np.round(rng.normal(size=(len(data.items), 9)), 1)  # score ties exercise the first-max rule
    scores = {(it.item_id, k): float(s[p, k]) for p, it in enumerate(data.items) for k in range(9)}
    human = np.asarray([it.human for it in data.items])
    idx = list(range(len(data.items)))
    tags = {"basic": idx, "advanced": idx, "all": idx}
    st = torch.tensor(s)
    by9 = torch.argmax(st, dim=1)
    by3 = torch.tensor([[int(torch.argmax(st[p][g:g + 3])) + g for g in range(0, 9, 3)] for p in idx])
    images = SimpleNamespace(images=[{"human_score": h} for row in human for h in row])
    ref_human, _ = t2v.rerank_human_scores(images, by9, by3)
    expect = {
        "genai_rank_top1": t2v.compute_top1_acc_skill(st, human, tags, idx)["all"],
        "genai_rank_top1_by3": t2v.compute_top1_acc_group_skill(st, human, tags, idx)["all"],
        "genai_rank_best9": ref_human["rerank_by_9"].mean(),
        "genai_rank_best3": ref_human["rerank_by_3"].mean(),
    }
    for name, value in expect.items():
        out, _ = _evaluate(tmp_path, "genai_rank", "DALLE_3", scores, name)
        assert out["accuracy"] == pytest.approx(float(value), abs=TOL), name
    out, _ = _evaluate(tmp_path, "genai_rank", "DALLE_3", scores, "genai_rank_best3")
    assert out["random_baseline"] == pytest.approx(ref_human["random"].mean(), abs=TOL)
    assert out["oracle"] == pytest.approx(ref_human["human_oracle_by3"].mean(), abs=TOL)
    assert out["measure"] == "human score"


def test_evalmuse_matches_official_metrics(tmp_path):
    torch = pytest.importorskip("torch")
    import scipy.stats
    from scipy.optimize import curve_fit

    def mean_squared_error(y, p):  # scikit-learn's, for the RMSE compute_metrics also returns
        return float(np.mean((np.asarray(y) - np.asarray(p)) ** 2))

    em = official("g29times__EvalMuse", "utils.py", ["logistic_func", "compute_metrics"], np=np, scipy=scipy,
                  curve_fit=curve_fit, mean_squared_error=mean_squared_error)
    ev = official("g29times__EvalMuse", "eval.py", ["binarize", "calculate_accuracy"], torch=torch)
    rows = bm.write_evalmuse(tmp_path, n_prompts=25, per_prompt=4, seed=3)
    rng = np.random.default_rng(4)
    y = np.asarray([np.mean(r["total_score"]) for r in rows])
    pred = y + rng.normal(0, 1.0, len(y))  # a noisy scorer
    data = load_dataset("evalmuse", "train", tmp_path, with_images=False)
    order = {(r["prompt_id"], r["img_path"]): n for n, r in enumerate(rows)}
    scores, elements, el_true, el_pred = {}, {}, [], []
    for it in data.items:
        for k, ref in enumerate(it.images):
            n = order[(it.item_id, ref.key)]
            scores[(it.item_id, k)] = float(pred[n])
            elements[(it.item_id, k)] = {e: float(rng.random()) for e in rows[n]["element_score"]}
            for e, label in rows[n]["element_score"].items():
                el_true.append(label)
                el_pred.append(elements[(it.item_id, k)][e])
    srcc, _, plcc, _ = em.compute_metrics(pred, y)
    acc, _ = ev.calculate_accuracy(el_true, el_pred)
    got = {c: _evaluate(tmp_path, "evalmuse", "train", scores, c, elements)[0]
           for c in ("srcc", "plcc", "evalmuse_element", "evalmuse")}
    assert got["srcc"]["accuracy"] == pytest.approx(srcc, abs=TOL)
    assert got["plcc"]["accuracy"] == pytest.approx(plcc, abs=TOL)
    assert got["evalmuse_element"]["accuracy"] == pytest.approx(acc, abs=TOL)
    assert got["evalmuse"]["accuracy"] == pytest.approx(plcc / 4 + srcc / 4 + acc / 2, abs=TOL)
    assert got["plcc"]["bootstrap_resamples"] == 200 and got["plcc"]["ci_low"] <= plcc <= got["plcc"]["ci_high"]
