"""The official conventions against plain-loop re-statements of the official scripts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from prefbench.metrics import (
    brier_score,
    cluster_bootstrap,
    expected_calibration_error,
    paired_bootstrap,
    per_prompt,
    rank_correlations,
    tune_tie_threshold,
)
from tests.fixtures.official import official_hpdv2, official_imagereward


def test_imagereward_hand_example():
    # ranks: image0 best, 1 and 2 tied. Pairs (0,1), (0,2) untied; (1,2) skipped.
    stats = per_prompt("imagereward", ["a"], [[1, 2, 2]], [[0.9, 0.9, 0.1]])
    # (0,1): model tie -> wrong; (0,2): correct
    assert stats.n_pairs == 2
    assert stats.accuracy == 0.5


def test_imagereward_missing_score_counts_wrong():
    stats = per_prompt("imagereward", ["a"], [[1, 2]], [[float("nan"), 0.1]])
    assert stats.accuracy == 0.0 and stats.n_pairs == 1
    stats = per_prompt("imagereward", ["a"], [[1, 2]], [[0.5, float("nan")]])
    assert stats.accuracy == 0.0


def test_all_tied_prompt_is_not_a_cluster():
    stats = per_prompt("imagereward", ["a", "b"], [[1, 1], [1, 2]], [[0.1, 0.2], [0.9, 0.1]])
    assert stats.item_ids == ["b"] and stats.accuracy == 1.0


def test_hpdv2_ties_count_correct():
    # human tie (1,2) and model tie (0,1): neither is an inversion; (0,2) is inverted
    stats = per_prompt("hpdv2", ["a"], [[1, 2, 2]], [[0.5, 0.5, 0.9]])
    assert stats.accuracy == pytest.approx(1 - 1 / 3)


def test_hpdv2_missing_score_is_an_inversion_unless_humans_tied():
    stats = per_prompt("hpdv2", ["a"], [[1, 2, 2]], [[0.9, float("nan"), 0.1]])
    # (0,1) untied + nan -> inversion; (1,2) human tie -> fine; (0,2) correct
    assert stats.accuracy == pytest.approx(1 - 1 / 3)


@pytest.mark.parametrize(
    ("label", "scores", "threshold", "credit"),
    [
        (1.0, [2.0, 1.0], 0.0, 1.0),
        (0.0, [2.0, 1.0], 0.0, 0.0),
        (0.5, [2.0, 1.0], 0.0, 0.5),  # label tie, model decided
        (1.0, [1.0, 1.0], 0.0, 0.5),  # model tie (equal probs), label decided
        (0.5, [1.0, 1.0], 0.0, 1.0),  # both tie
        (1.0, [1.1, 1.0], 0.1, 0.5),  # softmax gap 0.05 <= 0.1 -> tie
        (1.0, [1.1, 1.0], 0.01, 1.0),
        (1.0, [float("nan"), 1.0], 0.0, 0.0),
    ],
)
def test_pickapic_credit(label, scores, threshold, credit):
    stats = per_prompt("pickapic", ["r"], [[1, 2]], [scores], [label], threshold)
    assert stats.accuracy == credit


def test_official_equivalence_on_random_rankings():
    rng = np.random.default_rng(7)
    ranks = [list(rng.integers(1, 4, size=int(rng.integers(2, 9)))) for _ in range(300)]
    # coarse scores make model ties common
    scores = [list(np.round(rng.random(len(r)), 1)) for r in ranks]
    ids = [str(i) for i in range(len(ranks))]
    acc, total = official_imagereward(ranks, scores)
    stats = per_prompt("imagereward", ids, ranks, scores)
    assert stats.accuracy == acc and stats.n_pairs == total
    assert per_prompt("hpdv2", ids, ranks, scores).accuracy == pytest.approx(official_hpdv2(ranks, scores), abs=1e-12)


def test_real_imagereward_structure(ir_annotation):
    data = json.loads(ir_annotation.read_text())
    assert len(data) == 466 and sum(len(d["generations"]) for d in data) == 2720
    ranks = [d["ranking"] for d in data]
    rng = np.random.default_rng(0)
    scores = [list(rng.random(len(r))) for r in ranks]
    stats = per_prompt("imagereward", [d["id"] for d in data], ranks, scores)
    acc, total = official_imagereward(ranks, scores)
    assert stats.n_pairs == total == 6399
    assert stats.accuracy == acc


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    ranks = [[1, 2, 3, 4]] * 80
    scores = [list(rng.random(4) + np.array([0.4, 0.2, 0.1, 0])) for _ in ranks]
    stats = per_prompt("imagereward", [str(i) for i in range(80)], ranks, scores)
    lo, hi = cluster_bootstrap(stats, n_resamples=2000, seed=3)
    assert (lo, hi) == cluster_bootstrap(stats, n_resamples=2000, seed=3)
    assert (lo, hi) != cluster_bootstrap(stats, n_resamples=2000, seed=4)
    assert lo < stats.accuracy < hi
    assert 0.05 < hi - lo < 0.3


def test_cluster_bootstrap_is_wider_than_pair_bootstrap_for_correlated_pairs():
    # every pair within a prompt shares its outcome: clustering must widen the interval
    n = 60
    ranks = [[1, 2, 3, 4, 5]] * n
    rng = np.random.default_rng(2)
    good = rng.random(n) < 0.6
    scores = [[5, 4, 3, 2, 1] if g else [1, 2, 3, 4, 5] for g in good]
    stats = per_prompt("imagereward", [str(i) for i in range(n)], ranks, scores)
    lo, hi = cluster_bootstrap(stats, n_resamples=4000, seed=0)
    # naive interval treating all 600 pairs as independent
    p = stats.accuracy
    naive_half = 1.96 * math.sqrt(p * (1 - p) / stats.n_pairs)
    assert (hi - lo) / 2 > 2 * naive_half


def test_paired_bootstrap_detects_a_better_run_and_not_an_identical_one():
    rng = np.random.default_rng(5)
    ranks = [[1, 2, 3, 4]] * 120
    ids = [str(i) for i in range(120)]
    good = [list(rng.random(4) + np.array([0.6, 0.4, 0.2, 0])) for _ in ranks]
    bad = [list(rng.random(4)) for _ in ranks]
    a = per_prompt("imagereward", ids, ranks, good)
    b = per_prompt("imagereward", ids, ranks, bad)
    res = paired_bootstrap(a, b, n_resamples=2000)
    assert res.difference == pytest.approx(a.accuracy - b.accuracy)
    assert res.ci_low > 0 and res.p_a_better < 0.01 and res.p_b_better > 0.99
    same = paired_bootstrap(a, a, n_resamples=500)
    assert same.difference == 0 and same.ci_low == 0 and same.ci_high == 0


def test_paired_bootstrap_aligns_on_shared_prompts():
    a = per_prompt("imagereward", ["x", "y", "z"], [[1, 2]] * 3, [[1, 0], [1, 0], [0, 1]])
    b = per_prompt("imagereward", ["z", "y"], [[1, 2]] * 2, [[1, 0], [0, 1]])
    res = paired_bootstrap(a, b, n_resamples=200)
    assert res.n_common == 2
    assert res.difference == pytest.approx(0.5 - 0.5)


def test_tune_tie_threshold_finds_the_gap():
    # label ties exactly where the two scores are close
    ids = [str(i) for i in range(6)]
    scores = [[0.0, 0.05], [0.0, -0.05], [0.0, 3.0], [3.0, 0.0], [0.0, 0.02], [2.0, 0.0]]
    labels = [0.5, 0.5, 0.0, 1.0, 0.5, 1.0]
    t, acc = tune_tie_threshold(ids, [[1, 2]] * 6, scores, labels)
    assert acc == 1.0
    assert 0.025 <= t < 0.76


def test_rank_correlations_match_scipy():
    ranks = [[1, 2, 3, 3], [2, 1, 3]]
    scores = [[0.9, 0.5, 0.4, 0.1], [0.3, 0.2, 0.5]]
    got = rank_correlations(ranks, scores)
    taus = [kendalltau([-x for x in r], s).statistic for r, s in zip(ranks, scores)]
    rhos = [spearmanr([-x for x in r], s).statistic for r, s in zip(ranks, scores)]
    assert got["kendall_tau_b"] == pytest.approx(np.mean(taus))
    assert got["spearman"] == pytest.approx(np.mean(rhos))
    assert rank_correlations([[1, 1]], [[0.2, 0.1]])["n_items_correlation_undefined"] == 1


def test_brier_and_ece():
    assert brier_score([1.0, 0.0, 0.5], [1, 0, 1]) == pytest.approx(0.25 / 3)
    # two bins: p=0.2 (freq 0), p=0.8 (freq 1): |0.2-0| and |0.8-1| each with weight 1/2
    assert expected_calibration_error([0.2, 0.2, 0.8, 0.8], [0, 0, 1, 1]) == pytest.approx(0.2)
    assert expected_calibration_error([0.9, 0.9], [0, 0]) == pytest.approx(0.9)
