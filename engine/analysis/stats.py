"""Small exact statistics without scipy: Fisher's exact test, Benjamini-Hochberg, robust spread.

Counts here are run counts (tests or traces), so tables are small enough for exact
hypergeometric sums via ``lgamma``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _hypergeom_pmf_table(a_plus_b: int, c_plus_d: int, a_plus_c: int) -> tuple[int, int, list[float]]:
    """All probabilities of the top-left cell ``a`` given the margins, as (lo, hi, probs)."""
    n = a_plus_b + c_plus_d
    lo = max(0, a_plus_c - c_plus_d)
    hi = min(a_plus_b, a_plus_c)
    denom = _log_comb(n, a_plus_c)
    probs = [
        math.exp(_log_comb(a_plus_b, x) + _log_comb(c_plus_d, a_plus_c - x) - denom) for x in range(lo, hi + 1)
    ]
    return lo, hi, probs


def fisher_exact(a: int, b: int, c: int, d: int, alternative: str = "greater") -> float:
    """p-value of Fisher's exact test on [[a, b], [c, d]].

    ``greater``: the odds of row 1 being in column 1 exceed row 2's (e.g. a = failing runs
    with the signature, b = failing runs without, c = passing with, d = passing without).
    ``two-sided``: sum of tables no more likely than the observed one (scipy's convention).
    """
    if min(a, b, c, d) < 0:
        raise ValueError("counts must be non-negative")
    lo, hi, probs = _hypergeom_pmf_table(a + b, c + d, a + c)
    idx = a - lo
    if alternative == "greater":
        p = sum(probs[idx:])
    elif alternative == "less":
        p = sum(probs[: idx + 1])
    elif alternative == "two-sided":
        observed = probs[idx]
        p = sum(q for q in probs if q <= observed * (1 + 1e-7))
    else:
        raise ValueError(f"unknown alternative {alternative!r}")
    return min(1.0, max(0.0, p))


def increase_p_value(base_hits: int, base_total: int, cand_hits: int, cand_total: int) -> float:
    """One-sided p that the candidate's proportion exceeds the baseline's (Fisher on both samples)."""
    base_total = max(base_total, base_hits)
    cand_total = max(cand_total, cand_hits)
    return fisher_exact(cand_hits, cand_total - cand_hits, base_hits, base_total - base_hits, "greater")


def absence_p_value(cand_hits: int, cand_total: int, base_total: int) -> float:
    """Chance of seeing zero occurrences in ``base_total`` baseline runs if the candidate's rate held there.

    Small means the baseline was big enough that the mode would have shown up had it existed.
    """
    if cand_total <= 0 or base_total <= 0:
        return 1.0
    rate = min(1.0, cand_hits / cand_total)
    return (1.0 - rate) ** base_total


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted q-values in the input order (monotone, capped at 1)."""
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = min(1.0, running)
    return q


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise ValueError("median of empty sequence")
    mid = n // 2
    return float(s[mid]) if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def median_and_mad(sorted_values: Sequence[float]) -> tuple[float, float]:
    """Median and median absolute deviation of already-sorted values, in O(log n) after the one sort.

    The deviations below the median (read right to left) and above it (left to right) are two
    ascending runs, so the MAD is an order statistic of two sorted sequences: found by binary
    search over how many come from each run, without building or sorting the deviations.
    """
    s = sorted_values
    n = len(s)
    if n == 0:
        raise ValueError("median of empty sequence")
    mid = n // 2
    med = float(s[mid]) if n % 2 else (s[mid - 1] + s[mid]) / 2.0

    def below(i: int) -> float:  # i-th smallest deviation among s[:mid]
        return med - s[mid - 1 - i]

    def above(j: int) -> float:  # j-th smallest deviation among s[mid:]
        return s[mid + j] - med

    la, lb = mid, n - mid

    def kth(k: int) -> float:
        lo, hi = max(0, k + 1 - lb), min(k + 1, la)
        while True:
            i = (lo + hi) // 2
            j = k + 1 - i
            if i < la and j > 0 and above(j - 1) > below(i):
                lo = i + 1
            elif i > 0 and j < lb and below(i - 1) > above(j):
                hi = i - 1
            else:
                return max(below(i - 1) if i > 0 else float("-inf"), above(j - 1) if j > 0 else float("-inf"))

    mad = kth(mid) if n % 2 else (kth(mid - 1) + kth(mid)) / 2.0
    return med, mad


def robust_threshold(values: Sequence[float], k: float) -> float | None:
    """``median + k * 1.4826 * MAD``; None when the spread is zero (constant data has no outliers)."""
    med, mad = median_and_mad(sorted(values))
    if mad <= 0:
        return None
    return med + k * 1.4826 * mad
