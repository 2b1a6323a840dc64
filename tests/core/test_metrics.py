"""The official conventions on hand-made examples; the bootstrap; calibration. (Parity with the
official code itself: tests/core/test_golden.py.)"""

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


def test_hpdv2_model_ties_are_broken_by_image_index():
    # HPSv2's evaluate_rank: argsort(-scores) orders tied images by index, so of a tied pair the
    # earlier image is the model's better. (0,1): tied, humans put 0 first -> fine; (1,2) human
    # tie -> fine; (0,2): inverted
    assert per_prompt("hpdv2", ["a"], [[1, 2, 2]], [[0.5, 0.5, 0.9]]).accuracy == pytest.approx(1 - 1 / 3)
    # humans put the later image first: the tie is an inversion
    assert per_prompt("hpdv2", ["a"], [[2, 1]], [[0.5, 0.5]]).accuracy == 0.0
    assert per_prompt("hpdv2", ["a"], [[1, 2]], [[0.5, 0.5]]).accuracy == 1.0
    # a constant scorer on a strict ranking of 9: half the pairs put the later image first
    rng = np.random.default_rng(0)
    ranks = [list(rng.permutation(9) + 1) for _ in range(400)]
    constant = per_prompt("hpdv2", [str(k) for k in range(400)], ranks, [[1.0] * 9] * 400).accuracy
    assert 0.45 < constant < 0.55
    expected = per_prompt("hpdv2_expected_ties", [str(k) for k in range(400)], ranks, [[1.0] * 9] * 400).accuracy
    assert expected == pytest.approx(0.5)


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


def test_real_imagereward_structure(ir_annotation):
    data = json.loads(ir_annotation.read_text())
    assert len(data) == 466 and sum(len(d["generations"]) for d in data) == 2720
    ranks = [d["ranking"] for d in data]
    rng = np.random.default_rng(0)
    scores = [list(rng.random(len(r))) for r in ranks]
    stats = per_prompt("imagereward", [d["id"] for d in data], ranks, scores)
    assert stats.n_pairs == 6399  # the untied pairs the ImageReward paper counts
    assert 0.45 < stats.accuracy < 0.55


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
    # PickScore's grid (0, 0.1, ..., 1): 0.1 is the first that ties every close pair
    assert tune_tie_threshold(ids, [[1, 2]] * 6, scores, labels) == (0.1, 1.0)
    # a finer grid, on request
    from prefbench.metrics.conventions import FINE_GRID

    t, acc = tune_tie_threshold(ids, [[1, 2]] * 6, scores, labels, grid=FINE_GRID)
    assert acc == 1.0 and t == 0.03


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
