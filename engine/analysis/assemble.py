"""Turn collected signatures into ``Findings``: runs, prevalence, enrichment, systemic vs one-off.

A *run* is a test when any test linkage exists (spans carrying ``halo.test.nodeid`` or a
``tests.jsonl``), else a trace. In a test-linked dataset a trace outside any test (session
fixtures, a mixed dataset) is a run of its own, with no outcome. Modes that share their runs
are labelled with one root cause (``engine.analysis.root_causes``); titles, keys and excerpts
arrive cleaned from the aggregator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from engine.analysis.aggregate import Acc, Aggregator
from engine.analysis.config import AnalysisConfig
from engine.analysis.detectors import contrastive
from engine.analysis.root_causes import assign_root_causes
from engine.findings import DatasetSummary, Evidence, FailureMode, Findings, OneOff, mode_order
from engine.sanitize import clean_line, excerpt
from engine.traces.conventions import OUTCOMES_FAILING
from engine.traces.problems import Problems


@dataclass
class TestIndex:
    """Test outcomes and trace→test links from ``tests.jsonl`` (authoritative over span attributes)."""

    outcomes: dict[str, str] = field(default_factory=dict)
    trace_to_test: dict[str, str] = field(default_factory=dict)


class RunKeys(Protocol):
    """What the run table reads of a trace (a ``TraceState`` or the ``ColdState`` left after the detectors)."""

    @property
    def trace_id(self) -> str: ...
    @property
    def nodeid(self) -> str | None: ...
    @property
    def outcome(self) -> str | None: ...


@dataclass
class _Runs:
    unit: str
    of_trace: list[str]  # run id per trace number
    tests: dict[str, str]  # nodeid -> outcome ("" unknown)
    failing: set[str]
    passing: set[str]
    total: int


def _runs(states: Sequence[RunKeys], tests: TestIndex) -> _Runs:
    outcomes: dict[str, str] = {}
    nodeid_of: list[str | None] = []
    for st in states:
        nodeid = st.nodeid or tests.trace_to_test.get(st.trace_id)
        nodeid_of.append(nodeid)
        if nodeid:
            prev = outcomes.get(nodeid, "")
            if st.outcome and (not prev or st.outcome in OUTCOMES_FAILING):
                outcomes[nodeid] = st.outcome
            else:
                outcomes.setdefault(nodeid, prev)
    outcomes.update({k: v for k, v in tests.outcomes.items() if v})
    for k in tests.outcomes:
        outcomes.setdefault(k, "")
    if outcomes:
        failing = {k for k, v in outcomes.items() if v in OUTCOMES_FAILING}
        passing = {k for k, v in outcomes.items() if v == "passed"}
        # a trace outside any test (session fixtures, a mixed dataset) is a run of its own
        of_run = [n if n else "trace:" + st.trace_id for n, st in zip(nodeid_of, states, strict=True)]
        unlinked = sum(1 for n in nodeid_of if not n)
        return _Runs("tests", of_run, outcomes, failing, passing, len(outcomes) + unlinked)
    return _Runs("traces", [st.trace_id for st in states], {}, set(), set(), len(states))


def run_table(states: Sequence[RunKeys], tests: TestIndex) -> _Runs:
    """The run of each trace and the failing/passing runs, exactly as ``assemble`` counts them
    (public for modes judged after the scan, e.g. re-applied signatures)."""
    return _runs(states, tests)


def _evidence(acc: Acc, cap: int, excerpt_chars: int) -> tuple[list[Evidence], str | None]:
    acc.cap = cap
    acc.compact()
    rows = acc.evidence
    example = next((r[3] for r in rows if r[3]), None)
    ev = [Evidence(trace_id=t, span_id=s, test_nodeid=n or None) for n, t, s, _ in rows]
    return ev, excerpt(example, excerpt_chars) if example else None


def assemble(
    states: Sequence[RunKeys],
    agg: Aggregator,
    tests: TestIndex,
    cfg: AnalysisConfig,
    *,
    spans: int,
    files: list[str],
    problems: Problems,
) -> Findings:
    """Build the findings (without the gate) from everything the scan collected."""
    runs = _runs(states, tests)
    dataset = DatasetSummary(
        files=files,
        spans=spans,
        traces=len(states),
        tests=len(runs.tests),
        failing_tests=len(runs.failing),
        passing_tests=len(runs.passing),
        passing_test_ids=sorted(runs.passing),
        run_unit=runs.unit,  # type: ignore[arg-type]
        runs=runs.total,
        skipped=problems.skipped_total,
        skipped_by_reason=dict(sorted(problems.skipped.items())),
        repaired_by_reason=dict(sorted(problems.repaired.items())),
        problem_examples=list(problems.examples),
    )
    run_sets: dict[str, set[str]] = {}
    accs = sorted(agg.accs.values(), key=lambda a: a.id)
    for acc in accs:
        run_sets[acc.id] = {r for r in (runs.of_trace[t] for t in acc.traces) if r}
    enriched = contrastive.enrichment(run_sets, runs.failing, runs.passing, cfg.contrastive_min_runs)
    findings = Findings(dataset=dataset, config=cfg.model_dump())
    total = max(runs.total, 1)
    for acc in accs:
        rs = run_sets[acc.id]
        n_runs = len(rs)
        tests_hit = {r for r in rs if r in runs.tests} if runs.unit == "tests" else set()
        failing = len(tests_hit & runs.failing)
        prevalence = round(n_runs / total, 6)
        because = []
        if not acc.feature_only and n_runs >= cfg.min_runs and n_runs / total >= cfg.min_prevalence:
            because.append(f"recurs in {n_runs} runs ({prevalence:.1%})")
        enr = enriched.get(acc.id)
        if enr is not None and enr.q_value < cfg.alpha:
            because.append(f"enriched in failing runs (q={enr.q_value:.2g})")
        common = dict(
            id=acc.id,
            title=acc.title,
            category=acc.category,
            detector=acc.detector,
            key=acc.key,
            trace_count=len(acc.traces),
            test_count=len(tests_hit),
            failing_test_count=failing,
            run_count=n_runs,
            prevalence=prevalence,
        )
        if because:
            ev, example = _evidence(acc, cfg.max_evidence, cfg.max_excerpt_chars)
            findings.failure_modes.append(
                FailureMode(
                    **common,
                    systemic_because=because,
                    enrichment=enr,
                    evidence=ev,
                    example=example,
                    suggested_fix=acc.suggested_fix or _contrastive_fix(acc),
                    details={k: sorted({clean_line(x) for x in v}) for k, v in sorted(acc.details.items())},
                )
            )
        elif not acc.feature_only and acc.traces:
            ev, example = _evidence(acc, cfg.max_one_off_evidence, cfg.max_excerpt_chars)
            reason = one_off_reason(n_runs, prevalence, cfg)
            findings.one_offs.append(OneOff(**common, reason=reason, evidence=ev, example=example))
    findings.failure_modes.sort(key=mode_order)
    assign_root_causes(findings.failure_modes, run_sets)
    findings.one_offs.sort(key=lambda m: (-m.run_count, m.id))
    observed = sorted(((len(rs), i) for i, rs in run_sets.items() if rs), key=lambda x: (-x[0], x[1]))
    findings.observed = {i: n for n, i in observed[: cfg.max_observed]}
    return findings


def _contrastive_fix(acc: Acc) -> str | None:
    if acc.detector == "tool_called":
        return (
            f"Runs that reach `{acc.key}` fail more often: check the decision path that leads there and the "
            "policy the agent must follow when using it."
        )
    return None


def one_off_reason(n_runs: int, prevalence: float, cfg: AnalysisConfig) -> str:
    """Why a mode is a one-off rather than systemic, in words."""
    if n_runs <= 1:
        return "seen in one run"
    if n_runs >= cfg.min_runs:
        return f"below the prevalence threshold ({prevalence:.2%} < {cfg.min_prevalence:.2%})"
    return f"seen in {n_runs} runs (< {cfg.min_runs})"
