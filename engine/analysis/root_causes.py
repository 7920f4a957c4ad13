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

from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import chain

from engine.findings import FailureMode
from engine.root_cause_groups import kind_rank, lead_order

SHARED = 0.6
WITHIN = 0.8
MIN_SHARED = 2


def _joins(lead: FailureMode, n_lead: int, m: FailureMode, n_m: int, shared: int) -> bool:
    """Whether ``m`` (``n_m`` runs) belongs to ``lead``'s group (``n_lead`` runs, ``shared`` in common)."""
    if shared < MIN_SHARED:
        return False
    if shared / (n_lead + n_m - shared) >= SHARED:
        return True
    later = kind_rank(m.category) > kind_rank(lead.category) and m.category != "contrastive"
    return later and shared >= WITHIN * n_m


def group_root_causes(modes: Sequence[FailureMode], runs_of: Mapping[str, set[str]]) -> dict[str, str]:
    """Map every mode id in ``modes`` to the id of its group's lead (a lead maps to itself).

    ``runs_of`` gives each mode's set of run ids; a mode without one (an unverified LLM pattern)
    stays a group of its own. Overlaps are counted through a run → modes index, so only modes
    that share a run with a lead are ever compared with it.
    """
    ordered = sorted(modes, key=lead_order)
    sizes = [len(runs_of.get(m.id, ())) for m in ordered]
    modes_in_run: dict[str, list[int]] = {}
    for i, m in enumerate(ordered):
        for r in runs_of.get(m.id, ()):
            modes_in_run.setdefault(r, []).append(i)
    lead_of: dict[str, str] = {}
    for li, lead in enumerate(ordered):
        if lead.id in lead_of:
            continue
        lead_of[lead.id] = lead.id
        shared = Counter(chain.from_iterable(modes_in_run[r] for r in runs_of.get(lead.id, ())))
        for j in sorted(shared):  # in lead order, so the result does not depend on set iteration
            m = ordered[j]
            if j != li and m.id not in lead_of and _joins(lead, sizes[li], m, sizes[j], shared[j]):
                lead_of[m.id] = lead.id
    return lead_of


def assign_root_causes(modes: Sequence[FailureMode], runs_of: Mapping[str, set[str]]) -> None:
    """Set ``root_cause`` on every mode (in place)."""
    lead_of = group_root_causes(modes, runs_of)
    for m in modes:
        m.root_cause = lead_of[m.id]
