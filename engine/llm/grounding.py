"""Checking ``final_answer``'s failure modes against the traces before anyone sees them.

Every cited trace must exist (an unknown one rejects the mode; an existing trace with an
unknown span drops that evidence item). A signature must be valid, match something in the
store and match at least one of the mode's own evidence items. A mode without a signature
keeps its checked evidence and is reported ``verified=False``. A ``suspected_change`` is kept only
when ``engine.llm.attribution`` says it holds (dropped otherwise, never the mode with it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.findings import Evidence, FailureMode, RejectedMode, mode_id
from engine.llm.attribution import SuspectChecker
from engine.llm.tools.agent_tools import ProposedMode
from engine.sanitize import clean

MAX_EVIDENCE = 20


@dataclass
class CheckOutcome:
    accepted: list[FailureMode] = field(default_factory=list)
    rejected: list[RejectedMode] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Grounder:
    """Checks proposals against one store; span sets and signature matches are cached per run."""

    def __init__(self, store: Any, suspects: SuspectChecker | None = None) -> None:
        self.store = store
        self.suspects = suspects
        self.trace_ids: set[str] = set(store.trace_ids) if store is not None else set()
        self._spans: dict[str, set[str]] = {}

    def span_ids(self, trace_id: str) -> set[str]:
        got = self._spans.get(trace_id)
        if got is None:
            got = {str(s.get("span_id", "")) for s in self.store.spans(trace_id)}
            self._spans[trace_id] = got
        return got

    def check(self, modes: list[ProposedMode], round_no: int) -> CheckOutcome:
        out = CheckOutcome()
        for m in modes:
            mode, reason, note = self._check_one(m)
            if note:
                out.notes.append(note)
            if mode is None:
                out.rejected.append(RejectedMode(title=clean(m.title)[:200], reason=clean(reason), round=round_no,
                                                 signature=m.signature))
            else:
                out.accepted.append(mode)
        return out

    def _check_one(self, m: ProposedMode) -> tuple[FailureMode | None, str, str]:
        from engine.signatures import normalize_signature, signature_id, validate_signature
        from engine.traces.signature_scan import match_signature

        unknown = [e.trace_id for e in m.evidence if e.trace_id not in self.trace_ids]
        if unknown:
            return None, f"unknown trace id {', '.join(dict.fromkeys(unknown[:3]))} in evidence", ""
        evidence: list[Evidence] = []
        dropped: list[str] = []
        seen: set[tuple[str, str]] = set()
        for e in m.evidence:
            sid = e.span_id or ""
            if sid and sid not in self.span_ids(e.trace_id):
                dropped.append(f"{e.trace_id}/{sid}")
                continue
            if (e.trace_id, sid) not in seen:
                seen.add((e.trace_id, sid))
                evidence.append(Evidence(trace_id=e.trace_id, span_id=sid))
        note = clean(f"{m.title[:80]}: dropped evidence with unknown span ids {', '.join(dropped[:3])}") if dropped else ""
        if not evidence:
            why = "no evidence left: every cited span id is unknown" if dropped else "no evidence cited"
            return None, why, note
        base = {
            "title": clean(m.title)[:200],
            "category": clean(m.category or "llm")[:60] or "llm",
            "detector": "llm",
            "source": "llm",
            "description": clean(m.description) or None,
            "suggested_fix": clean(m.suggested_fix) if m.suggested_fix else None,
            "confidence": m.confidence,
        }
        if m.signature is None:
            key = " ".join(m.title.lower().split())
            fm = FailureMode(id=mode_id("llm", key), key=key, verified=False, evidence=evidence[:MAX_EVIDENCE],
                             trace_count=len({e.trace_id for e in evidence}), **base)
            return self._attributed(fm, m), "", note
        problem = validate_signature(m.signature)
        if problem is not None:
            return None, f"invalid signature: {problem}", note
        sig = normalize_signature(m.signature)
        match = match_signature(self.store, sig)
        if match.error:
            return None, f"invalid signature: {match.error}", note
        if match.trace_count == 0:
            return None, "signature matches nothing in the traces", note
        hits = [e for e in evidence if match.matches(e.trace_id, e.span_id or None)]
        if not hits:
            return None, (f"signature misses its evidence: it matches {match.trace_count} traces "
                          f"({match.span_count} spans), none of the cited ones"), note
        sid = signature_id(sig)
        fm = FailureMode(
            id=sid, key=sid, signature=sig, verified=True,
            evidence=(hits + [e for e in evidence if e not in hits])[:MAX_EVIDENCE],
            trace_count=match.trace_count, run_count=match.trace_count,
            example=clean(match.example)[:300] if match.example else None,
            details={"matched_spans": match.span_count},
            **base,
        )
        return self._attributed(fm, m), "", note

    def _attributed(self, fm: FailureMode, m: ProposedMode) -> FailureMode:
        """``fm`` with the model's ``suspected_change`` when it checks out (a dropped one is counted)."""
        if m.suspected_change and self.suspects is not None:
            kept = self.suspects.check(m.suspected_change)
            if kept:
                fm.suspected_change = clean(kept)
        return fm


def rejection_message(rejected: list[RejectedMode], accepted: list[FailureMode]) -> str:
    """The ``final_answer`` tool result of the correction round: each rejected mode and why."""
    lines = [
        f"{len(rejected)} of {len(rejected) + len(accepted)} failure modes were rejected; {len(accepted)} accepted "
        "and kept. This is your one chance to correct them. Call final_answer again with corrected versions of "
        "the rejected modes only (use real trace/span ids you have seen, and a signature that matches the cited "
        "spans; check it with search_trace first), or omit a mode to drop it. Your answer text may be updated.",
        "Rejected:",
    ]
    for r in rejected:
        lines.append(f"- {r.title}: {r.reason}")
    return "\n".join(lines)
