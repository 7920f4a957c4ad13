"""Hits → failure-mode candidates: per signature, the traces it touched and a bounded, order-independent evidence sample.

Evidence is the ``max_evidence`` smallest (test nodeid, trace id, span id) entries, one per
trace — a deterministic function of the set of occurrences, so it does not depend on the
order spans were read in.

Keys and titles come from trace text (error messages, tool names): keys are cleaned before the
id is hashed from them (``engine.sanitize.clean_key``: secrets redacted, control characters
stripped but the ``\x1f`` detectors join key parts with), so the published key never holds a
secret and the id does not change when the secret does; titles and fixes are cleaned to one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.analysis.detectors.base import Hit
from engine.findings import mode_id
from engine.sanitize import clean, clean_key, clean_line

EvidenceRow = tuple[str, str, str, str]  # (nodeid or "", trace_id, span_id, example)
MAX_DETAIL_VALUES = 20


@dataclass
class Acc:
    """Everything collected for one signature (detector + key)."""

    detector: str
    key: str
    title: str
    category: str
    suggested_fix: str | None
    feature_only: bool = False
    traces: set[int] = field(default_factory=set)
    evidence: list[EvidenceRow] = field(default_factory=list)
    details: dict[str, set[str]] = field(default_factory=dict)
    cap: int = 10

    @property
    def id(self) -> str:
        return mode_id(self.detector, self.key)

    def add_evidence(self, row: EvidenceRow) -> None:
        self.evidence.append(row)
        if len(self.evidence) > 4 * self.cap + 16:
            self.compact()

    def compact(self) -> None:
        rows = sorted(set(self.evidence))
        out: list[EvidenceRow] = []
        seen: set[str] = set()
        for row in rows:
            if row[1] in seen:
                continue
            seen.add(row[1])
            out.append(row)
            if len(out) >= self.cap:
                break
        self.evidence = out


class Aggregator:
    """Collects hits and contrastive features per signature."""

    def __init__(self, evidence_cap: int) -> None:
        self.cap = evidence_cap
        self.accs: dict[tuple[str, str], Acc] = {}
        self._safe_keys: dict[str, str] = {}  # raw key -> cleaned key (cleaned once per distinct key)

    def _acc(self, detector: str, key: str, title: str, category: str, fix: str | None, feature: bool) -> Acc:
        safe = self._safe_keys.get(key)
        if safe is None:
            safe = self._safe_keys[key] = clean_key(key)
        acc = self.accs.get((detector, safe))
        if acc is None:
            acc = self.accs[(detector, safe)] = Acc(
                detector, safe, clean_line(title), category, clean(fix) if fix else None, feature, cap=self.cap
            )
        elif acc.feature_only and not feature:
            acc.feature_only = False
        return acc

    def add_hit(self, hit: Hit, trace_idx: int, trace_id: str, nodeid: str | None) -> None:
        acc = self._acc(hit.detector, hit.key, hit.title, hit.category, hit.suggested_fix, False)
        acc.traces.add(trace_idx)
        acc.add_evidence((nodeid or "", trace_id, hit.span_id, hit.example or ""))
        if hit.detail:
            name, value = hit.detail
            vals = acc.details.setdefault(name, set())
            if len(vals) < MAX_DETAIL_VALUES:
                vals.add(value)

    def add_feature(
        self, detector: str, key: str, title: str, category: str, trace_idx: int, evidence: EvidenceRow
    ) -> None:
        """A signature that only becomes a mode if it is enriched in failing runs (e.g. "tool X was called")."""
        acc = self._acc(detector, key, title, category, None, True)
        acc.traces.add(trace_idx)
        acc.add_evidence(evidence)

    def add_traces(self, hit: Hit, trace_idx: set[int], rows: list[EvidenceRow], details: dict[str, str]) -> None:
        """Add a signature judged over the whole dataset (outliers)."""
        acc = self._acc(hit.detector, hit.key, hit.title, hit.category, hit.suggested_fix, False)
        acc.traces |= trace_idx
        for row in rows:
            acc.add_evidence(row)
        for name, value in details.items():
            acc.details.setdefault(name, set()).add(value)
