"""Group failure modes that share their runs into root causes: one defect, several facets.

One planted defect shows up as several modes — a tool error, the retry loop it provokes, the
repeated identical calls of that loop and the turn-budget exhaustion it ends in — all in the same
runs. A person wants one item with four facets; the gate still wants four ids. So grouping only
*labels* modes (``FailureMode.root_cause`` = the id of the group's lead) and never merges them.

Deterministic: a pure function of the modes' categories, counts, ids and run sets.

* Leads are taken in ``engine.root_cause_groups.lead_order``: causes (errors) before behaviours (loops, refusals) before outcomes
  (budget, empty output, outliers) before bare contrastive signals; then most failing tests,
  most runs, id.
* A mode joins a lead when they share their runs (Jaccard ≥ ``SHARED``), or when it is a later
  kind than the lead (a behaviour or outcome) whose runs lie almost all within the lead's
  (≥ ``WITHIN`` of its runs, at least ``MIN_SHARED`` runs) — a consequence of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.findings import FailureMode
from engine.root_cause_groups import kind_rank, lead_order

SHARED = 0.6
WITHIN = 0.8
MIN_SHARED = 2


def _joins(lead: FailureMode, lead_runs: set[str], m: FailureMode, runs: set[str]) -> bool:
    if not runs or not lead_runs:
        return False
    shared = len(lead_runs & runs)
    if shared < MIN_SHARED:
        return False
    if shared / len(lead_runs | runs) >= SHARED:
        return True
    later = kind_rank(m.category) > kind_rank(lead.category) and m.category != "contrastive"
    return later and shared >= WITHIN * len(runs)


def group_root_causes(modes: Sequence[FailureMode], runs_of: Mapping[str, set[str]]) -> dict[str, str]:
    """Map every mode id in ``modes`` to the id of its group's lead (a lead maps to itself).

    ``runs_of`` gives each mode's set of run ids; a mode without one (an unverified LLM pattern)
    stays a group of its own.
    """
    lead_of: dict[str, str] = {}
    ordered = sorted(modes, key=lead_order)
    for lead in ordered:
        if lead.id in lead_of:
            continue
        lead_of[lead.id] = lead.id
        lead_runs = runs_of.get(lead.id, set())
        for m in ordered:
            if m.id not in lead_of and _joins(lead, lead_runs, m, runs_of.get(m.id, set())):
                lead_of[m.id] = lead.id
    return lead_of


def assign_root_causes(modes: Sequence[FailureMode], runs_of: Mapping[str, set[str]]) -> None:
    """Set ``root_cause`` on every mode (in place)."""
    lead_of = group_root_causes(modes, runs_of)
    for m in modes:
        m.root_cause = lead_of[m.id]
