"""Merge failure modes proposed by reasoners (the LLM engine) into the deterministic findings.

A proposed mode whose id matches a detector mode confirms it (``source: both``: the detector's
id and statistics stay, the proposal's evidence, fix and LLM fields are added); others are
added as ``source: llm``.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.analysis.config import AnalysisConfig
from engine.findings import FailureMode, Findings, mode_order


def _merge_one(existing: FailureMode, proposed: FailureMode, cap: int) -> None:
    existing.source = "both"
    seen = {(e.trace_id, e.span_id) for e in existing.evidence}
    for e in proposed.evidence:
        if len(existing.evidence) >= cap:
            break
        if (e.trace_id, e.span_id) not in seen:
            existing.evidence.append(e)
            seen.add((e.trace_id, e.span_id))
    existing.suggested_fix = existing.suggested_fix or proposed.suggested_fix
    if proposed.title and proposed.title != existing.title:
        existing.details.setdefault("llm_title", [proposed.title])


def merge_modes(findings: Findings, proposed: Sequence[FailureMode], cfg: AnalysisConfig) -> None:
    """Fold proposed modes into ``findings`` in place (invalid ones cost a note)."""
    by_id = {m.id: m for m in findings.failure_modes}
    total = max(findings.dataset.runs, 1)
    for raw in proposed:
        try:
            mode = raw if isinstance(raw, FailureMode) else FailureMode.model_validate(raw)
        except ValueError as exc:
            findings.notes.append(f"a reasoner returned an invalid mode: {str(exc).splitlines()[0]}")
            continue
        if mode.id in by_id:
            _merge_one(by_id[mode.id], mode, cfg.max_evidence)
            continue
        mode = mode.model_copy(update={"source": "llm", "evidence": mode.evidence[: cfg.max_evidence]})
        if mode.run_count and not mode.prevalence:
            mode.prevalence = round(mode.run_count / total, 6)
        if not mode.systemic_because:
            mode.systemic_because = ["proposed by the LLM engine"]
        by_id[mode.id] = mode
        findings.failure_modes.append(mode)
    findings.failure_modes.sort(key=mode_order)
