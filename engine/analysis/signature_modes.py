"""Signatures → failure modes, counted exactly like detector modes, and the library that tracks them.

A signature found by the LLM engine (or carried by the library from an earlier run) is
evaluated over the whole store (``engine.traces.signature_scan``); its matched traces become
runs through the same run table ``assemble`` uses (``assemble.run_table``), and run count,
prevalence, failing tests, enrichment (``contrastive.enrichment``, Benjamini-Hochberg over
the signatures judged together) and the systemic rule are the detector modes' own. So a mode
found once by a model is re-found, counted and gated on every later analysis at no model cost.

Proposals are checked once more here: a signature that is invalid, matches nothing, or
matches none of the traces it cites is rejected with the reason (``findings.rejected``). A
signature whose matched runs overlap a detector mode's heavily is merged into it (the
detector's id stays, ``source: both``, the LLM's description, signature and confidence kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.analysis.assemble import TestIndex, one_off_reason, run_table
from engine.analysis.config import AnalysisConfig
from engine.analysis.detectors import contrastive
from engine.analysis.detectors.base import TraceState
from engine.findings import Evidence, FailureMode, Findings, OneOff, RejectedMode, Signature, mode_order
from engine.sanitize import clean_line, excerpt
from engine.signatures import DETECTOR, LibraryEntry, SignatureError, signature_key, validate_signature
from engine.traces import canonical_reader
from engine.traces.signature_scan import SignatureMatch, match_signatures
from engine.traces.store import TraceStore

__all__ = [
    "OVERLAP",
    "Proposal",
    "RunTable",
    "SignatureStep",
    "apply_signatures",
    "baseline_observed",
    "rejected_modes",
    "library_from_findings",
    "proposals_from_modes",
    "run_table_of_store",
]

OVERLAP = 0.8  # evidence containment and run-count ratio above which a signature *is* a detector mode
MAX_TITLE = 200


@dataclass
class Proposal:
    """A signature to turn into a mode: its library entry, the traces it cites, where it came from."""

    entry: LibraryEntry
    evidence: list[Evidence] = field(default_factory=list)
    origin: str = "llm"  # "llm": proposed in this analysis; "library": known from an earlier one

    @property
    def id(self) -> str:
        return self.entry.id


@dataclass
class RunTable:
    """Which run each trace belongs to, and which runs failed or passed (``assemble.run_table``)."""

    unit: str
    run_of: dict[str, str]  # trace id -> run id
    nodeid_of: dict[str, str]  # trace id -> test nodeid ("" when none)
    tests: dict[str, str]
    failing: set[str]
    passing: set[str]
    total: int


@dataclass
class SignatureStep:
    """What applying the signatures did: the library after it, rejections, matches and notes."""

    library: list[LibraryEntry] = field(default_factory=list)
    rejected: list[RejectedMode] = field(default_factory=list)
    matches: dict[str, SignatureMatch] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)  # signature id -> detector mode id it joined
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- runs


def run_table_of_store(store: TraceStore, tests: TestIndex) -> RunTable:
    """The run table of a store, from its index rollups (test nodeid and outcome per trace) and ``tests``."""
    nodeid: dict[str, str | None] = {}
    outcome: dict[str, str | None] = {}
    for idx in store.indexes:
        cols = idx.state.cols
        for ti, tid in enumerate(idx.trace_ids):
            n, o = cols[canonical_reader.NODEID][ti], cols[canonical_reader.OUTCOME][ti]
            if nodeid.get(tid) is None:
                nodeid[tid] = n
            prev = outcome.get(tid)
            if o and (prev is None or o in ("failed", "error")):
                outcome[tid] = o
    states = [TraceState(tid, nodeid=nodeid.get(tid), outcome=outcome.get(tid)) for tid in store.trace_ids]
    runs = run_table(states, tests)
    return RunTable(
        unit=runs.unit,
        run_of={st.trace_id: r for st, r in zip(states, runs.of_trace, strict=True)},
        nodeid_of={st.trace_id: st.nodeid or tests.trace_to_test.get(st.trace_id) or "" for st in states},
        tests=runs.tests,
        failing=runs.failing,
        passing=runs.passing,
        total=runs.total,
    )


def _run_set(match: SignatureMatch, runs: RunTable) -> set[str]:
    return {r for r in (runs.run_of.get(t) for t in match.traces) if r}


# ---------------------------------------------------------------- inputs


def proposals_from_modes(modes: Iterable[FailureMode | Mapping[str, Any]]) -> tuple[list[Proposal], list[Any]]:
    """Split a reasoner's modes: those with a signature become proposals; the rest come back marked
    unverified (and a mode that is not a valid ``FailureMode`` comes back as it was, for ``merge_modes``
    to note)."""
    proposals: list[Proposal] = []
    rest: list[Any] = []
    for raw in modes:
        try:
            mode = raw if isinstance(raw, FailureMode) else FailureMode.model_validate(raw)
        except ValueError:
            rest.append(raw)
            continue
        if mode.signature is None:
            rest.append(mode.model_copy(update={"verified": False}))
            continue
        entry = LibraryEntry(mode.signature, mode.title, mode.category, mode.description, mode.suggested_fix,
                             mode.confidence)
        proposals.append(Proposal(entry, list(mode.evidence), "llm"))
    return proposals, rest


def rejected_modes(raw: Iterable[RejectedMode | Mapping[str, Any]]) -> list[RejectedMode]:
    """A reasoner's rejections (``ReasonResult.rejected``) as ``findings.rejected`` rows; malformed ones are skipped."""
    out: list[RejectedMode] = []
    for r in raw:
        try:
            row = r if isinstance(r, RejectedMode) else RejectedMode.model_validate(r)
        except ValueError:
            continue
        out.append(row.model_copy(update={"title": clean_line(row.title)[:MAX_TITLE], "reason": clean_line(row.reason)}))
    return out


def library_from_findings(findings: Findings) -> list[LibraryEntry]:
    """The signatures a findings file carries (a baseline), with titles and texts from its modes when it has them."""
    meta: dict[str, FailureMode] = {}
    for m in findings.failure_modes:
        if m.signature is not None and validate_signature(m.signature) is None:
            meta.setdefault(LibraryEntry(m.signature).id, m)
    out: list[LibraryEntry] = []
    for sig in findings.signatures:
        if validate_signature(sig) is not None:
            continue
        e = LibraryEntry(sig)
        got = meta.get(e.id)
        if got is not None:  # a merged mode carries the detector's title and category; the LLM's title is a detail
            title = (got.details.get("llm_title") or [got.title])[0]
            category = "llm" if got.source == "both" else got.category
            e = LibraryEntry(sig, title, category, got.description, got.suggested_fix, got.confidence)
        out.append(e)
    return out


# ---------------------------------------------------------------- the step


def _reject(step: SignatureStep, p: Proposal, reason: str) -> None:
    step.rejected.append(RejectedMode(title=clean_line(p.entry.title)[:MAX_TITLE], reason=reason,
                                      signature=p.entry.signature))


def _normalized(proposals: Sequence[Proposal], step: SignatureStep) -> list[Proposal]:
    """Validate and normalize; the same signature twice is one proposal (evidence pooled, first texts kept)."""
    by_id: dict[str, Proposal] = {}
    for p in proposals:
        problem = validate_signature(p.entry.signature)
        if problem is not None:
            if p.origin == "llm":
                _reject(step, p, f"invalid signature: {problem}")
            else:
                step.notes.append(f"library signature skipped: {problem}")
            continue
        try:
            e = LibraryEntry(p.entry.signature, p.entry.title, p.entry.category, p.entry.description,
                             p.entry.suggested_fix, p.entry.confidence)
        except SignatureError as exc:  # pragma: no cover - validate_signature said yes
            _reject(step, p, f"invalid signature: {exc}")
            continue
        have = by_id.get(e.id)
        if have is None:
            by_id[e.id] = Proposal(e, list(p.evidence), p.origin)
            continue
        have.evidence.extend(p.evidence)
        if p.origin == "llm" and have.origin == "library":
            have.origin = "llm"
            have.entry = e  # this run's model texts replace the library's
    return list(by_id.values())


def _cited(p: Proposal, match: SignatureMatch, known: set[str]) -> tuple[list[Evidence], str | None]:
    """The proposal's evidence the store knows, and why to reject it (None when it stands)."""
    cited = [e for e in p.evidence if e.trace_id in known]
    unknown = sorted({e.trace_id for e in p.evidence if e.trace_id not in known})
    if p.evidence and not cited:
        return [], f"cites only unknown trace ids ({', '.join(clean_line(u)[:40] for u in unknown[:3])})"
    if match.span_count == 0:
        return cited, "signature matches nothing in the traces"
    if cited and not any(match.matches(e.trace_id) for e in cited):
        n = len({e.trace_id for e in cited})
        return cited, f"signature misses its evidence: it matches {match.trace_count} traces, none of the {n} cited"
    return cited, None


def _evidence(p: Proposal, match: SignatureMatch, cited: list[Evidence], runs: RunTable, cap: int) -> list[Evidence]:
    """Cited evidence the signature confirms, then the smallest (nodeid, trace, span) rows, one per trace."""
    out: list[Evidence] = []
    seen: set[str] = set()
    for e in cited:
        if e.trace_id in seen or not match.matches(e.trace_id):
            continue
        spans = match.traces[e.trace_id]
        span = e.span_id if e.span_id in spans else spans[0]
        out.append(Evidence(trace_id=e.trace_id, span_id=span, test_nodeid=runs.nodeid_of.get(e.trace_id) or None))
        seen.add(e.trace_id)
    rows = sorted((runs.nodeid_of.get(t, ""), t, min(s)) for t, s in match.traces.items() if t not in seen)
    for nodeid, t, s in rows[: max(0, cap - len(out))]:
        out.append(Evidence(trace_id=t, span_id=s, test_nodeid=nodeid or None))
    return out[:cap]


def _overlapping_detector_mode(
    findings: Findings, rs: set[str], runs: RunTable, taken: set[str]
) -> FailureMode | None:
    """The detector mode whose runs are (estimated to be) the signature's own.

    Detector modes keep only a bounded evidence sample, so overlap is judged on it: at least
    ``OVERLAP`` of the mode's evidence runs are matched, and the two run counts are within
    ``OVERLAP`` of each other. The best such mode wins.
    """
    best: tuple[float, FailureMode] | None = None
    for m in findings.failure_modes:
        if m.source == "llm" or m.id in taken or not m.evidence or not m.run_count or not rs:
            continue
        ev_runs = {runs.run_of.get(e.trace_id) for e in m.evidence} - {None}
        if not ev_runs:
            continue
        containment = len(ev_runs & rs) / len(ev_runs)
        ratio = min(len(rs), m.run_count) / max(len(rs), m.run_count)
        if containment >= OVERLAP and ratio >= OVERLAP:
            score = containment * ratio
            if best is None or score > best[0]:
                best = (score, m)
    return best[1] if best else None


def _merge_into(mode: FailureMode, p: Proposal, evidence: list[Evidence], cap: int) -> None:
    mode.source = "both"
    e = p.entry
    mode.description = mode.description or e.description
    mode.signature = mode.signature or e.signature
    mode.confidence = mode.confidence if mode.confidence is not None else e.confidence
    mode.suggested_fix = mode.suggested_fix or e.suggested_fix
    mode.details.setdefault("signature_id", [p.id])
    if e.title and e.title != mode.title:
        mode.details.setdefault("llm_title", [clean_line(e.title)[:MAX_TITLE]])
    have = {(x.trace_id, x.span_id) for x in mode.evidence}
    for x in evidence:
        if len(mode.evidence) >= cap:
            break
        if (x.trace_id, x.span_id) not in have:
            mode.evidence.append(x)
            have.add((x.trace_id, x.span_id))


def apply_signatures(
    findings: Findings,
    store: TraceStore,
    proposals: Sequence[Proposal],
    tests: TestIndex,
    cfg: AnalysisConfig,
) -> SignatureStep:
    """Evaluate every signature over ``store`` and fold the modes into ``findings`` (in place).

    ``proposals`` holds this analysis's LLM proposals and the known library (``origin="library"``).
    Systemic signatures become failure modes (or join a detector mode), the others one-offs;
    every signature that matched anything gets its run count in ``findings.observed``; the
    accepted ones become ``findings.signatures``. Library signatures are never rejected: one
    that matches nothing now is simply not seen (the gate calls its mode resolved).
    """
    step = SignatureStep()
    props = _normalized(proposals, step)
    if not props:
        findings.rejected.extend(step.rejected)
        return step
    matches = match_signatures(store, [p.entry.signature for p in props])
    runs = run_table_of_store(store, tests)
    if runs.total != findings.dataset.runs:
        step.notes.append(
            f"signature runs counted over {runs.total} runs, the analysis over {findings.dataset.runs}"
        )
    known = set(store.trace_ids)
    accepted: list[tuple[Proposal, SignatureMatch, list[Evidence]]] = []
    for p, m in zip(props, matches, strict=True):
        step.matches[p.id] = m
        cited, why = _cited(p, m, known)
        if why is not None and p.origin == "llm":
            _reject(step, p, why)
            continue
        accepted.append((p, m, cited))
        step.library.append(p.entry)
    run_sets = {p.id: _run_set(m, runs) for p, m, _ in accepted}
    enriched = contrastive.enrichment(run_sets, runs.failing, runs.passing, cfg.contrastive_min_runs)
    total = max(runs.total, 1)
    existing = {m.id for m in findings.failure_modes}
    taken: set[str] = set()
    for p, m, cited in accepted:
        rs = run_sets[p.id]
        if not rs:
            continue
        findings.observed[p.id] = max(findings.observed.get(p.id, 0), len(rs))
        n_runs = len(rs)
        tests_hit = {r for r in rs if r in runs.tests} if runs.unit == "tests" else set()
        prevalence = round(n_runs / total, 6)
        because = []
        if n_runs >= cfg.min_runs and n_runs / total >= cfg.min_prevalence:
            because.append(f"recurs in {n_runs} runs ({prevalence:.1%})")
        enr = enriched.get(p.id)
        if enr is not None and enr.q_value < cfg.alpha:
            because.append(f"enriched in failing runs (q={enr.q_value:.2g})")
        cap = cfg.max_evidence if because else cfg.max_one_off_evidence
        evidence = _evidence(p, m, cited, runs, cap)
        e = p.entry
        common: dict[str, Any] = dict(
            id=p.id,
            title=clean_line(e.title)[:MAX_TITLE],
            category=clean_line(e.category)[:60] or "llm",
            detector=DETECTOR,
            key=signature_key(e.signature),
            trace_count=m.trace_count,
            test_count=len(tests_hit),
            failing_test_count=len(tests_hit & runs.failing),
            run_count=n_runs,
            prevalence=prevalence,
            evidence=evidence,
            example=excerpt(m.example, cfg.max_excerpt_chars) if m.example else None,
        )
        if not because:
            reason = one_off_reason(n_runs, prevalence, cfg)
            if p.id not in existing and all(o.id != p.id for o in findings.one_offs):
                findings.one_offs.append(OneOff(**common, reason=reason))
            continue
        target = _overlapping_detector_mode(findings, rs, runs, taken)
        if target is not None:
            _merge_into(target, p, evidence, cfg.max_evidence)
            step.merged[p.id] = target.id
            taken.add(target.id)
            continue
        if p.id in existing:  # already a mode (a reasoner's own merge): refresh it with the counted one
            findings.failure_modes = [x for x in findings.failure_modes if x.id != p.id]
        findings.failure_modes.append(
            FailureMode(
                **common,
                source="llm",
                systemic_because=because,
                enrichment=enr,
                suggested_fix=e.suggested_fix,
                description=e.description,
                signature=e.signature,
                confidence=e.confidence,
                verified=True,
                details={"origin": [p.origin]},
            )
        )
        existing.add(p.id)
    findings.failure_modes.sort(key=mode_order)
    findings.one_offs.sort(key=lambda o: (-o.run_count, o.id))
    lib = {e.id: e for e in step.library}
    findings.signatures = [lib[k].signature for k in sorted(lib)]
    findings.rejected.extend(step.rejected)
    return step


# ---------------------------------------------------------------- the baseline


def baseline_observed(
    baseline: Findings, store: TraceStore, tests: TestIndex, signatures: Sequence[Signature]
) -> dict[str, int] | None:
    """Run counts of ``signatures`` over the baseline's own traces (0 included: evaluated, not seen).

    Set into the baseline's ``observed`` before the gate, a PR-only signature is judged "new"
    with the statistics of a detector mode. None when the traces do not add up to the baseline's
    runs (they belong to another baseline): nothing can be concluded from them.
    """
    runs = run_table_of_store(store, tests)
    if runs.total != baseline.dataset.runs:
        return None
    counts: dict[str, int] = {}
    for m in match_signatures(store, list(signatures)):
        if m.error is None:
            counts[m.sig_id] = len(_run_set(m, runs))
    return counts
