"""P(A beats B) from (mu, sigma) pairs and the pairs a sigma scorer's calibration counts."""

from __future__ import annotations

import math

import pytest

from prefbench.metrics.uncertainty import preference_probability, sigma_outcomes


def test_preference_probability_is_the_normal_cdf_of_the_standardised_gap():
    assert preference_probability(1.0, 0.6, 0.0, 0.8) == pytest.approx(0.5 * (1 + math.erf(1.0 / math.sqrt(2))))
    for args in [(0.3, 0.2, -1.0, 0.5), (2.0, 1.0, 2.5, 0.1)]:  # P(A>B) + P(B>A) = 1
        a_mu, a_s, b_mu, b_s = args
        assert preference_probability(*args) + preference_probability(b_mu, b_s, a_mu, a_s) == pytest.approx(1.0)
    assert preference_probability(0.0, 0.1, 5.0, 0.1) < 1e-12 < preference_probability(0.0, 5.0, 5.0, 5.0) < 0.5
    assert [preference_probability(m, 0.0, 0.0, 0.0) for m in (1.0, -1.0, 0.0)] == [1.0, 0.0, 0.5]


def test_sigma_outcomes_counts_untied_pairs_with_both_values_once():
    ranks = [1, 2, 2, 3]
    mus = [1.0, 0.0, 0.5, None]
    sigmas = [1.0, 1.0, 0.5, 1.0]
    probs, outs = sigma_outcomes(ranks, mus, sigmas)
    # pairs (0,1) and (0,2); (1,2) is a human tie, image 3 has no mu
    assert outs == [1.0, 1.0]
    assert probs == pytest.approx([preference_probability(1.0, 1.0, 0.0, 1.0), preference_probability(1.0, 1.0, 0.5, 0.5)])
    probs, outs = sigma_outcomes([2, 1], [1.0, 0.0], [1.0, 1.0])
    assert outs == [0.0] and probs[0] > 0.5  # the model prefers the image humans ranked worse
