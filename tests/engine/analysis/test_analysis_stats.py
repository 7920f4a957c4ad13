"""Exact statistics against textbook values (computed independently, e.g. with scipy)."""

from __future__ import annotations

import math

import pytest

from engine.analysis.stats import (
    absence_p_value,
    benjamini_hochberg,
    fisher_exact,
    increase_p_value,
    median,
    robust_threshold,
)


def test_fisher_matches_reference_values() -> None:
    # scipy.stats.fisher_exact([[8, 2], [1, 5]]) -> p two-sided 0.034965..., greater 0.024475...
    assert fisher_exact(8, 2, 1, 5, "two-sided") == pytest.approx(0.03496503496503495, rel=1e-9)
    assert fisher_exact(8, 2, 1, 5, "greater") == pytest.approx(0.024475524475524476, rel=1e-9)
    # less = 1 - P(a = 9) = 1 - C(10,9)C(6,0)/C(16,9)
    assert fisher_exact(8, 2, 1, 5, "less") == pytest.approx(1 - 10 / math.comb(16, 9), rel=1e-9)


def test_fisher_against_direct_hypergeometric_sum() -> None:
    a, b, c, d = 3, 17, 11, 9
    n1, n2, k = a + b, c + d, a + c
    direct = sum(math.comb(n1, x) * math.comb(n2, k - x) for x in range(a, min(n1, k) + 1)) / math.comb(n1 + n2, k)
    assert fisher_exact(a, b, c, d, "greater") == pytest.approx(direct, rel=1e-9)


def test_fisher_degenerate_tables() -> None:
    assert fisher_exact(0, 0, 0, 0) == 1.0
    assert fisher_exact(0, 10, 0, 10, "greater") == 1.0
    with pytest.raises(ValueError):
        fisher_exact(-1, 1, 1, 1)


def test_increase_needs_both_sample_sizes() -> None:
    assert increase_p_value(1, 100, 30, 100) < 1e-6  # 1% -> 30%: significant
    assert increase_p_value(2, 100, 4, 100) > 0.2  # 2% -> 4%: noise
    assert increase_p_value(0, 3, 2, 3) > 0.05  # tiny samples cannot show much


def test_absence_p_value() -> None:
    assert absence_p_value(33, 100, 100) < 1e-10
    assert absence_p_value(2, 100, 100) == pytest.approx(0.98**100)
    assert absence_p_value(1, 1, 0) == 1.0


def test_benjamini_hochberg_reference() -> None:
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([0.9, 0.8]) == pytest.approx([0.9, 0.9])


def test_robust_threshold() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 2, 3]) == 2.5
    assert robust_threshold([5.0] * 50, 5) is None  # no spread, no outliers
    thr = robust_threshold([10.0 + (i % 5) for i in range(50)] + [500.0], 5)
    assert thr is not None and 12 < thr < 500


def test_median_and_mad_match_the_definition() -> None:
    import random

    from engine.analysis.stats import median_and_mad

    rng = random.Random(2)
    for n in (1, 2, 3, 4, 7, 10, 51, 200):
        for _ in range(20):
            vals = [round(rng.lognormvariate(3, 1), 3) for _ in range(n)] + [5.0] * rng.randint(0, 3)
            med = median(vals)
            mad = median([abs(v - med) for v in vals])
            got = median_and_mad(sorted(vals))
            assert got[0] == pytest.approx(med) and got[1] == pytest.approx(mad), vals
