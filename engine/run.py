"""The orchestrator: detect → reason → merge → gate → publish, for ``halo analyze`` and the pytest plugin.

Each layer does one job and knows nothing above it: ``engine.analysis`` detects, merges and
gates; reasoners (``engine.llm``) propose modes through ``engine.reasoning.Reasoner``;
publishers (``engine.publish``) write files through ``engine.publish.base.Publisher``. Only this
module sees them all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.analysis.baseline import compare, load_baseline
from engine.analysis.baseline_traces import remove_baseline_traces, write_baseline_traces
from engine.analysis.config import AnalysisConfig
from engine.analysis.detectors.api import DetectorSet
from engine.analysis.findings_hooks import run_findings_hooks
from engine.analysis.merge import merge_modes
from engine.analysis.pipeline import AnalysisInputError, analyze_paths, read_tests_file
from engine.analysis.signature_modes import proposals_from_modes, rejected_modes
from engine.analysis.signature_tracking import track_signatures
from engine.analysis.summary import summary_lines
from engine.findings import FAIL_ON_CHOICES, Findings, LLMTotals
from engine.llm.attribution import carry_suspected_changes
from engine.publish.base import check_publisher
from engine.publish.brief import FixBrief
from engine.publish.html import HtmlReport
from engine.publish.outputs import REPORT_FILE, default_publishers, publish_outputs
from engine.reasoning import ReasonContext, Reasoner, ReasonResult, check_reasoner
from engine.signatures import LIBRARY_FILE, save_library
from engine.traces.problems import Problems
from engine.traces.rows import view_rows
from engine.traces.store import TraceStore

__all__ = ["AnalysisInputError", "AnalysisOutcome", "run_analysis"]


@dataclass
class AnalysisOutcome:
    """What callers need after an analysis: the findings, the verdict, an exit code and terminal lines."""

    findings: Findings
    verdict: str
    exit_code: int
    summary_lines: list[str]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    reason_results: list[ReasonResult] = field(default_factory=list)


class SharedStore:
    """The analysis's trace store, opened on first use and then shared.

    Opening indexes every trace file: reasoners, signatures, baseline traces and the HTML evidence
    viewer all read the same store, so one analysis pays for it once (and not at all when none of
    them needs it). A failed open is remembered and raised again to each later caller.
    """

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._store: TraceStore | None = None
        self._error: Exception | None = None

    def __call__(self) -> TraceStore:
        if self._store is None:
            if self._error is not None:
                raise self._error
            try:
                self._store = TraceStore.open(self.paths)
            except Exception as exc:
                self._error = exc
                raise
        return self._store


def _evidence_loader(store: SharedStore) -> Callable[[Sequence[str]], dict[str, list[dict[str, Any]]]]:
    """The evidence traces' spans for the fix brief and the HTML viewer (read-only rows), read from the
    store when the first of them is written; a trace both show is read once."""
    loaded: dict[str, list[dict[str, Any]]] = {}

    def load(trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        missing = [t for t in trace_ids if t not in loaded]
        if missing:
            loaded.update(view_rows(store(), missing))
        return {t: loaded[t] for t in trace_ids if t in loaded}

    return load


def reason(
    findings: Findings, reasoners: Sequence[Reasoner], store: SharedStore, out_dir: Path, tests_file: Path | None
) -> list[ReasonResult]:
    """Run each reasoner over the deterministic findings; a reasoner that raises costs one note."""
    results: list[ReasonResult] = []
    failed: list[Exception] = []

    def open_store() -> TraceStore | None:
        try:
            return store()
        except Exception as exc:  # noqa: BLE001 - a store failure must not sink the deterministic findings
            if not failed:
                failed.append(exc)
                findings.notes.append(f"trace store unavailable for reasoners: {type(exc).__name__}: {exc}")
            return None

    for reasoner in reasoners:
        context = ReasonContext(paths=store.paths, findings=findings.model_copy(deep=True), out_dir=out_dir,
                                open_store=open_store, tests_file=tests_file)
        try:
            results.append(reasoner.reason(context))
        except Exception as exc:  # noqa: BLE001 - the deterministic findings stand
            first = (str(exc).strip().splitlines() or [""])[0]
            findings.notes.append(f"reasoner {reasoner.name} failed: {type(exc).__name__}: {first}")
    return results


def locate(findings: Findings, repo_root: Path, diff_base: str | None = None) -> None:
    """Cite where in the code under test each mode lives, and which changed line it may come from.

    A failure here costs one note. ``diff_base``: the ref the change under review is compared
    with (default ``GITHUB_BASE_REF``); without git or a base, no attribution.
    """
    try:
        from engine.code.changes import attribute_changes
        from engine.code.locate import locate_modes

        locate_modes(findings, repo_root)
        attribute_changes(findings, repo_root, diff_base)
    except Exception as exc:  # noqa: BLE001 - locations are a help, never a reason to lose the findings
        findings.notes.append(f"code locations unavailable: {type(exc).__name__}: {exc}")


def write_signature_outputs(
    findings: Findings, library: Sequence[Any], out_dir: Path, store: SharedStore, tests_file: Path | None,
    baseline_path: Path | None, keep_traces: bool = False,
) -> dict[str, Path]:
    """The signature library (``signatures.json``) and, for a baseline being updated, its traces when
    ``keep_traces`` (else an earlier baseline's traces are removed: they would not match it); a failure is a note."""
    written: dict[str, Path] = {}
    try:
        if library:
            save_library(out_dir / LIBRARY_FILE, library)
            written[LIBRARY_FILE] = out_dir / LIBRARY_FILE
        if baseline_path is not None and keep_traces:
            for p in write_baseline_traces(store(), tests_file, baseline_path):
                written[p.name] = p
        elif baseline_path is not None:
            remove_baseline_traces(baseline_path)
    except Exception as exc:  # noqa: BLE001 - outputs beside the findings, never a reason to lose them
        findings.notes.append(f"signature outputs not written: {type(exc).__name__}: {exc}")
    return written


def run_analysis(
    paths: list[Path],
    out_dir: Path,
    *,
    baseline: Path | None = None,
    fail_on: str = "new",
    update_baseline: bool = False,
    tests_file: Path | None = None,
    reasoners: Sequence[Any] = (),
    publishers: Sequence[Any] | None = None,
    config: AnalysisConfig | None = None,
    repo_root: Path | None = None,
    detectors: Sequence[Any] = (),
    findings_hooks: Sequence[tuple[str, Callable[[Findings], object]]] = (),
    diff_base: str | None = None,
    baseline_traces: bool = False,
    jobs: int | None = None,
) -> AnalysisOutcome:
    """Analyse ``paths``, gate against ``baseline``, publish into ``out_dir``.

    ``repo_root``: the project under test (the pytest rootdir), where failure modes are located in
    the code and from where the fix brief's commands run. ``detectors``: user detectors
    (``engine.analysis.detectors.api``), in the same pass as the built-ins. ``findings_hooks``:
    ``(name, hook(findings))`` called before the gate, to read or annotate (deletions are undone).
    ``baseline_traces``: with ``update_baseline``, also write the analysed traces beside the baseline
    so signatures found later are evaluated on them (``engine.analysis.baseline_traces``).
    ``jobs``: processes for one large canonical JSONL input (None: one per core from 1 GB).

    Raises ``AnalysisInputError`` when nothing readable was found, ``ValueError`` for a bad
    ``fail_on`` or an unreadable baseline file.
    """
    if fail_on not in FAIL_ON_CHOICES:
        raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON_CHOICES)}, not {fail_on!r}")
    checked_reasoners = [check_reasoner(r) for r in reasoners]
    detector_set = DetectorSet.of(detectors)
    checked_publishers = [check_publisher(p) for p in publishers] if publishers is not None else default_publishers()
    cfg = config or AnalysisConfig()
    paths = [Path(p) for p in paths]
    out_dir = Path(out_dir)
    baseline_path = Path(baseline) if baseline else None
    base = load_baseline(baseline_path, update=update_baseline) if baseline_path else None

    problems = Problems()
    tests = read_tests_file(Path(tests_file) if tests_file else None, problems)
    store = SharedStore(paths)
    if publishers is None:
        load_evidence = _evidence_loader(store)
        checked_publishers.append(check_publisher(FixBrief(repo_root, tests.outcomes, load_evidence)))
        checked_publishers.append(check_publisher(HtmlReport(tests.outcomes, load_evidence)))
    findings = analyze_paths(paths, config=cfg, tests=tests, problems=problems, detectors=detector_set,
                             jobs=jobs)
    if findings.dataset.spans == 0 and findings.dataset.tests == 0:
        detail = "; ".join(problems.examples[:3]) or "no spans"
        raise AnalysisInputError(f"nothing readable in {', '.join(map(str, paths)) or 'no paths'} ({detail})")

    results = reason(findings, checked_reasoners, store, out_dir, tests_file) if checked_reasoners else []
    proposals = []
    for result in results:
        found, unverified = proposals_from_modes(result.modes)
        proposals.extend(found)
        merge_modes(findings, unverified, cfg)
        findings.notes.extend(result.notes)
        findings.rejected.extend(rejected_modes(result.rejected))  # the engine's own rounds; ours follow
        if result.totals:
            findings.llm = LLMTotals.model_validate(result.totals)
        if result.answer:
            findings.llm_answer = result.answer
    # every known signature is re-applied (with or without a model) before hooks and the gate see the modes
    tracked = track_signatures(findings, paths=paths, out_dir=out_dir, baseline=base, baseline_path=baseline_path,
                               proposals=proposals, tests=tests, cfg=cfg, open_store=store)
    if results:  # signature modes were rebuilt from the library: give them back the reasoner's checked attributions
        carry_suspected_changes(findings, [m for r in results for m in r.modes])

    run_findings_hooks(findings, findings_hooks)
    findings.gate = compare(findings, tracked.baseline, baseline_path=baseline_path, fail_on=fail_on, alpha=cfg.alpha,
                            unknowable=tracked.unknowable, tests_run=tests.outcomes)
    if update_baseline and baseline_path:
        findings.gate.verdict = "pass"
        findings.gate.failing_ids = []
        findings.gate.notes.append(f"baseline updated: {baseline_path} now holds these findings")

    if repo_root is not None:
        locate(findings, Path(repo_root), diff_base)
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = write_signature_outputs(findings, tracked.library, out_dir, store, tests_file,
                                    baseline_path if update_baseline else None, baseline_traces)
    published = publish_outputs(findings, out_dir, checked_publishers)  # findings.json last: its notes name failures
    written = published.files
    written.update(extra)
    if update_baseline and baseline_path:
        baseline_path.parent.mkdir(parents=True, exist_ok=True)
        findings.write(baseline_path)
    verdict = findings.gate.verdict
    return AnalysisOutcome(
        findings=findings,
        verdict=verdict,
        exit_code=1 if verdict == "fail" else 0,
        summary_lines=[*summary_lines(findings, written.get(REPORT_FILE),
                                      other_outputs=[n for n in ("report.html", "fix-brief.md") if n in written]),
                       *published.failures],
        out_dir=out_dir,
        files=written,
        reason_results=results,
    )
