"""Deterministic detection: read spans (streaming) → detectors → findings (systemic vs one-off, enrichment).

No gate and no files: ``engine.run`` orchestrates detect → reason → merge → gate → publish.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import orjson

from engine.analysis.aggregate import Aggregator
from engine.analysis.assemble import TestIndex, assemble
from engine.analysis.config import AnalysisConfig
from engine.analysis.detectors.api import DetectorSet
from engine.analysis.heap import release_free_memory
from engine.analysis.scan import Scanner, calls_of
from engine.analysis.source import iter_input_spans, scan_inputs
from engine.findings import Findings
from engine.traces.problems import Problems
from engine.traces.span import Span


class AnalysisInputError(ValueError):
    """Nothing readable in the input (no spans and no tests): a usage problem, not a finding."""


def read_tests_file(path: Path | None, problems: Problems) -> TestIndex:
    """``tests.jsonl`` → outcomes and trace links; bad lines are tallied, never fatal."""
    idx = TestIndex()
    if path is None or not Path(path).exists():
        return idx
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                problems.skip("malformed_test_record", f"{path}:{lineno}")
                continue
            nodeid = rec.get("nodeid") if isinstance(rec, dict) else None
            if not isinstance(nodeid, str) or not nodeid:
                problems.skip("malformed_test_record", f"{path}:{lineno}")
                continue
            outcome = rec.get("outcome")
            outcome = outcome if isinstance(outcome, str) and outcome != "unknown" else ""
            if outcome or nodeid not in idx.outcomes:
                prev = idx.outcomes.get(nodeid, "")
                idx.outcomes[nodeid] = outcome if outcome in ("failed", "error") or not prev else prev
            for tid in rec.get("trace_ids") or []:
                if isinstance(tid, str):
                    idx.trace_to_test.setdefault(tid, nodeid)
    return idx


def analyze_spans(
    spans: Iterable[Span],
    *,
    config: AnalysisConfig | None = None,
    tests: TestIndex | None = None,
    files: Sequence[str] = (),
    problems: Problems | None = None,
    detectors: DetectorSet | None = None,
) -> Findings:
    """Detect failure modes in a span stream (no gate, no files written) — the core, usable on its own."""
    return _analyze(lambda sc: sc.add_all(spans), config or AnalysisConfig(), tests or TestIndex(), files,
                    problems or Problems(), detectors or DetectorSet())


def analyze_paths(
    paths: Sequence[Path],
    *,
    config: AnalysisConfig,
    tests: TestIndex,
    problems: Problems,
    detectors: DetectorSet | None = None,
    jobs: int | None = None,
) -> Findings:
    """``analyze_spans`` over input files, canonical JSONL through the typed fast path (``source.scan_inputs``).

    Detectors with ``on_span`` need every span normalized, so they take the dict path instead.
    ``jobs``: processes for one large canonical JSONL file (None: one per core from 1 GB; see ``source``).
    """
    files: list[str] = []
    user = detectors or DetectorSet()
    feed: Callable[[Scanner], None] = (
        (lambda sc: sc.add_all(iter_input_spans(list(paths), problems, files)))
        if user.span_hooks
        else (lambda sc: scan_inputs(sc, list(paths), problems, files, jobs))
    )
    findings = _analyze(feed, config, tests, files, problems, user)
    release_free_memory()  # the scanner is gone: what comes next should not stack on its freed heap
    return findings


def _analyze(
    feed: Callable[[Scanner], None],
    cfg: AnalysisConfig,
    tests: TestIndex,
    files: Sequence[str],
    problems: Problems,
    detectors: DetectorSet,
) -> Findings:
    """Scan with ``feed``, then the per-run detectors, outliers and assembly.

    The cyclic GC is paused throughout: the scan and the per-run detectors allocate millions of
    short-lived acyclic objects while per-trace state grows, and generational passes would
    re-walk that state again and again for nothing (refcounting frees everything anyway).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        scanner = Scanner(cfg, detectors)
        feed(scanner)
        findings = _detect(scanner, cfg, tests, files, problems, detectors)
        findings.notes.extend(detectors.notes())
        return findings
    finally:
        if enabled:
            gc.enable()


def _detect(
    scanner: Scanner,
    cfg: AnalysisConfig,
    tests: TestIndex,
    files: Sequence[str],
    problems: Problems,
    detectors: DetectorSet,
) -> Findings:
    agg = Aggregator(cfg.max_evidence)
    with_outcomes = bool(tests.outcomes) or any(st.outcome for st in scanner.states)
    states = scanner.states
    for idx in range(len(states)):
        scanned, hits, calls = scanner.finish(idx, with_outcomes)  # one trace's full state at a time
        trace_id = states[idx].trace_id
        nodeid = scanned or tests.trace_to_test.get(trace_id)
        for hit in hits:
            agg.add_hit(hit, idx, trace_id, nodeid)
        for tool, span_id in calls_of(calls) if with_outcomes else ():
            agg.add_feature(
                "tool_called", tool, f"Runs that call `{tool}` fail more often", "contrastive", idx,
                (nodeid or "", trace_id, span_id, f"{tool} called"),
            )
    for res in scanner.outliers.results():
        rows = []
        for ti, span_id, example in res.extremes:
            run = states[ti]
            rows.append((run.nodeid or tests.trace_to_test.get(run.trace_id) or "", run.trace_id, span_id, example))
        agg.add_traces(
            res.hit,
            res.trace_idx,
            rows,
            {"threshold": f"{res.threshold:.0f}", "median": f"{res.median:.0f}", "samples": str(res.samples)},
        )
    return assemble(states, agg, tests, cfg, spans=scanner.spans, files=list(files), problems=problems)
