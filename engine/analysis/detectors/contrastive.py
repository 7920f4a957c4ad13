"""Contrastive pass: which signatures are significantly more common in failing runs than in passing ones.

For each signature seen in at least ``min_runs`` runs: one-sided Fisher exact test on
(failing with, failing without, passing with, passing without), then Benjamini-Hochberg over
all signatures tested, so scanning hundreds of signatures does not manufacture discoveries.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.analysis.stats import benjamini_hochberg, fisher_exact
from engine.findings import Enrichment


def enrichment(
    runs_by_signature: Mapping[str, set[str]],
    failing: set[str],
    passing: set[str],
    min_runs: int,
) -> dict[str, Enrichment]:
    """Enrichment statistics for every testable signature (keys of ``runs_by_signature``)."""
    if not failing or not passing:
        return {}
    tested: list[tuple[str, int, int]] = []
    for sig in sorted(runs_by_signature):
        runs = runs_by_signature[sig]
        f = len(runs & failing)
        p = len(runs & passing)
        if f + p >= min_runs:
            tested.append((sig, f, p))
    pvals = [fisher_exact(f, len(failing) - f, p, len(passing) - p, "greater") for _, f, p in tested]
    qvals = benjamini_hochberg(pvals)
    return {
        sig: Enrichment(
            failing_with=f,
            failing_total=len(failing),
            passing_with=p,
            passing_total=len(passing),
            p_value=pv,
            q_value=qv,
        )
        for (sig, f, p), pv, qv in zip(tested, pvals, qvals, strict=True)
    }
