"""Pairwise preference probabilities from scorers that give a score with a standard deviation.

A scorer such as HPSv3 models each image's reward as N(mu, sigma^2). Two independent rewards give

    P(A preferred over B) = Phi((mu_A - mu_B) / sqrt(sigma_A^2 + sigma_B^2))

(the probability that a draw of A's reward exceeds a draw of B's). With it, such a scorer is
calibrated like the anchor-pairwise scorers are: Brier score and ECE over the human-untied pairs
of each item, each unordered pair once (the lower image index as A).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def preference_probability(mu_a: float, sigma_a: float, mu_b: float, sigma_b: float) -> float:
    """P(A beats B) under independent normal rewards; with both sigmas 0, 1, 0 or 0.5 by the means.

    >>> preference_probability(1.0, 0.0, 0.0, 1.0)  # one sigma apart: Phi(1)
    0.8413447460685429
    >>> preference_probability(0.0, 0.3, 0.0, 0.4)
    0.5
    """
    scale = math.hypot(sigma_a, sigma_b)
    diff = mu_a - mu_b
    if scale == 0:
        return 1.0 if diff > 0 else 0.0 if diff < 0 else 0.5
    return 0.5 * (1.0 + math.erf(diff / (scale * math.sqrt(2.0))))


def sigma_outcomes(ranks: Sequence[float], mus: Sequence[float | None],
                   sigmas: Sequence[float | None]) -> tuple[list[float], list[float]]:
    """(P(A beats B), 1 if humans ranked A better else 0) for every within-item pair A < B whose
    human ranks differ and whose images both have mu and sigma."""
    probs, outs = [], []
    n = len(ranks)
    for a in range(n):
        for b in range(a + 1, n):
            if ranks[a] == ranks[b] or None in (mus[a], mus[b], sigmas[a], sigmas[b]):
                continue
            probs.append(preference_probability(mus[a], sigmas[a], mus[b], sigmas[b]))
            outs.append(1.0 if ranks[a] < ranks[b] else 0.0)
    return probs, outs
