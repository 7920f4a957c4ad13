"""The signature step of every analysis: re-apply the whole library, add this run's proposals, feed the gate.

Which signatures are known (the library), decided here once:

* the baseline's ``signatures`` (a baseline updated after a run carries every signature known then);
* ``<out_dir>/signatures.json`` left by the previous analysis into the same output directory
  (local iterations keep what a model found even before any baseline is updated);
* the signatures this analysis's reasoners proposed and the checks accepted.

All of them are evaluated deterministically on every analysis, with or without a model, and
written back to ``<out_dir>/signatures.json`` and ``findings.signatures``. A signature the
baseline never knew is evaluated on the baseline's own traces when it carries them
(``baseline_traces``), so the gate can call its mode "new"; otherwise the mode is "emerging".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.analysis.assemble import TestIndex
from engine.analysis.baseline_traces import open_baseline_traces
from engine.analysis.config import AnalysisConfig
from engine.analysis.signature_modes import (
    Proposal,
    SignatureStep,
    apply_signatures,
    baseline_observed,
    library_from_findings,
)
from engine.findings import Findings
from engine.signatures import LIBRARY_FILE, LibraryEntry, load_library_entries
from engine.traces.problems import Problems
from engine.traces.store import TraceStore

__all__ = ["SignatureTracking", "track_signatures"]


@dataclass
class SignatureTracking:
    """The step's result: the library to write, the baseline view for the gate, modes it cannot call new."""

    library: list[LibraryEntry] = field(default_factory=list)
    baseline: Findings | None = None
    unknowable: set[str] = field(default_factory=set)
    step: SignatureStep | None = None


def _known(base: Findings | None, out_dir: Path, notes: list[str]) -> list[Proposal]:
    known: list[Proposal] = []
    if base is not None:
        known += [Proposal(e, [], "library") for e in library_from_findings(base)]
    try:
        entries, problems = load_library_entries(Path(out_dir) / LIBRARY_FILE)
    except ValueError as exc:
        notes.append(f"previous signature library ignored: {exc}")
        entries, problems = [], []
    notes.extend(problems)
    known += [Proposal(e, [], "library") for e in entries]
    return known


def track_signatures(
    findings: Findings,
    *,
    paths: Sequence[Path],
    out_dir: Path,
    baseline: Findings | None,
    baseline_path: Path | None,
    proposals: Sequence[Proposal],
    tests: TestIndex,
    cfg: AnalysisConfig,
    open_store: Callable[[], TraceStore] | None = None,
) -> SignatureTracking:
    """Apply every known and proposed signature to ``findings`` (in place) and prepare the gate's baseline view.

    Costs nothing when there are no signatures at all (``open_store`` is called only when there are;
    without it the store of ``paths`` is opened here); a failure costs one note (the deterministic
    findings stand).
    """
    out = SignatureTracking(baseline=baseline)
    notes: list[str] = []
    everything = list(proposals) + _known(baseline, out_dir, notes)
    findings.notes.extend(notes)
    if not everything:
        return out
    try:
        store = open_store() if open_store is not None else TraceStore.open(list(paths))
        step = apply_signatures(findings, store, everything, tests, cfg)
    except Exception as exc:  # noqa: BLE001 - the deterministic findings stand
        first = (str(exc).strip().splitlines() or [""])[0]
        findings.notes.append(f"signatures not applied: {type(exc).__name__}: {first}")
        return out
    out.step = step
    out.library = step.library
    findings.notes.extend(step.notes)
    if baseline is None or baseline_path is None:
        return out
    base_ids = {e.id for e in library_from_findings(baseline)}
    base_modes = {m.id for m in baseline.failure_modes}
    pr_only = [e for e in step.library if e.id not in base_ids and e.id not in base_modes]
    if not pr_only:
        return out
    problems = Problems()
    try:
        opened = open_baseline_traces(baseline_path, problems)
    except Exception as exc:  # noqa: BLE001 - no baseline traces: the modes are emerging
        findings.notes.append(f"baseline traces unreadable: {type(exc).__name__}: {exc}")
        opened = None
    if opened is None:
        out.unknowable = {e.id for e in pr_only}
        return out
    base_store, base_tests = opened
    counts = baseline_observed(baseline, base_store, base_tests, [e.signature for e in pr_only])
    if counts is None:
        findings.notes.append(
            f"baseline traces beside {baseline_path.name} do not add up to its {baseline.dataset.runs} runs: not used"
        )
        out.unknowable = {e.id for e in pr_only}
        return out
    view = baseline.model_copy(deep=True)
    view.observed.update(counts)
    out.baseline = view
    out.unknowable = {e.id for e in pr_only} - set(counts)
    return out
