"""Merge failure modes proposed by reasoners (the LLM engine) into the deterministic findings.

A reasoner is any object with ``name`` and ``find(store, findings) -> list[FailureMode]``. A
mode whose id matches a detector mode confirms it (``source: both``); others are added as
``source: llm``. A reasoner that raises costs a note, never the analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.analysis.config import AnalysisConfig
from engine.findings import FailureMode, Findings, mode_order


def open_store(paths: list[Path]) -> Any:
    """The trace store reasoners query, or None when it cannot be opened (reasoners must cope)."""
    try:
        from engine.traces.store import TraceStore  # owned by the index/store engineer
    except ImportError:
        return None
    return TraceStore.open(paths)


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


def merge_reasoner_modes(
    findings: Findings, reasoners: Sequence[Any], paths: list[Path], cfg: AnalysisConfig
) -> None:
    """Run every reasoner and fold its modes into ``findings`` in place."""
    try:
        store = open_store(paths)
    except Exception as exc:  # noqa: BLE001 - a store failure must not sink the deterministic findings
        findings.notes.append(f"trace store unavailable for reasoners: {type(exc).__name__}: {exc}")
        store = None
    by_id = {m.id: m for m in findings.failure_modes}
    total = max(findings.dataset.runs, 1)
    for reasoner in reasoners:
        name = getattr(reasoner, "name", type(reasoner).__name__)
        try:
            proposed = list(reasoner.find(store, findings) or [])
        except Exception as exc:  # noqa: BLE001
            findings.notes.append(f"reasoner {name} failed: {type(exc).__name__}: {exc}")
            continue
        for raw in proposed:
            try:
                mode = raw if isinstance(raw, FailureMode) else FailureMode.model_validate(raw)
            except ValueError as exc:
                findings.notes.append(f"reasoner {name} returned an invalid mode: {str(exc).splitlines()[0]}")
                continue
            if mode.id in by_id:
                _merge_one(by_id[mode.id], mode, cfg.max_evidence)
                continue
            mode = mode.model_copy(update={"source": "llm", "evidence": mode.evidence[: cfg.max_evidence]})
            if mode.run_count and not mode.prevalence:
                mode.prevalence = round(mode.run_count / total, 6)
            if not mode.systemic_because:
                mode.systemic_because = [f"proposed by {name}"]
            by_id[mode.id] = mode
            findings.failure_modes.append(mode)
    findings.failure_modes.sort(key=mode_order)
