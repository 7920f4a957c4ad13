"""Root-cause groups as people read them: modes grouped by ``root_cause``, lead first, largest first.

A read of the findings only (both the analysis summary and the publishers use it); the grouping
itself is computed by ``engine.analysis.root_causes``. Kinds order leads and facets: causes
(errors) before behaviours (loops, refusals) before outcomes (budget, empty output, outliers)
before bare contrastive signals.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.findings import FailureMode

CAUSES = frozenset(
    {"tool_error", "hallucinated_tool", "invalid_arguments", "llm_api_failure", "exception", "guardrail"}
)
OUTCOMES = frozenset({"budget_exhaustion", "empty_output", "truncated_output", "length"})


def kind_rank(category: str) -> int:
    """0 cause, 1 behaviour, 2 outcome, 3 contrastive signal."""
    if category in CAUSES:
        return 0
    if category in OUTCOMES or category.endswith("_outlier"):
        return 2
    if category == "contrastive":
        return 3
    return 1


def lead_order(m: FailureMode) -> tuple[int, int, int, str]:
    """Who leads a group: the earliest kind, then most failing tests, most runs, id."""
    return (kind_rank(m.category), -m.failing_test_count, -m.run_count, m.id)


def facet_label(category: str) -> str:
    """A category as a facet name in prose (``retry_loop`` → "retry loop")."""
    return FACET_LABELS.get(category, category.replace("_", " "))


FACET_LABELS = {
    "repeated_call": "repeated identical calls",
    "budget_exhaustion": "budget exhausted",
    "hallucinated_tool": "call to a missing tool",
    "llm_api_failure": "LLM API failure",
    "contrastive": "contrastive signal",
}


def groups(modes: Sequence[FailureMode]) -> list[list[FailureMode]]:
    """Modes grouped by ``root_cause``, lead first then facets; largest group first.

    Size is the group's most failing tests, then most runs (its members share their runs, so
    the largest member stands for the union). A mode without ``root_cause`` is its own group.
    """
    by_lead: dict[str, list[FailureMode]] = {}
    for m in modes:
        by_lead.setdefault(m.root_cause or m.id, []).append(m)
    out = []
    for lead_id, members in by_lead.items():
        members.sort(key=lambda m: (m.id != lead_id, *lead_order(m)))
        out.append(members)

    def size(g: list[FailureMode]) -> tuple[int, int, int, int, str]:
        return (
            min(kind_rank(m.category) for m in g) // 3,  # groups of contrastive signals only come last
            -max(m.failing_test_count for m in g),
            -max(m.run_count for m in g),
            lead_order(g[0])[0],
            g[0].id,
        )

    out.sort(key=size)
    return out
