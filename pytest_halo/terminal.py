"""The short ``halo`` section of the terminal summary (controller only).

Output piped into ``head`` closes early: a broken pipe ends our section quietly (the
tests' own result is already decided), never with a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.sanitize import clean_line
from pytest_halo.session import SessionResult

TOP_N = 5


def _rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _mode_line(mode: Any) -> str | None:
    """Best-effort one line for a failure mode when the analysis gave no summary lines."""
    title = getattr(mode, "title", None) or getattr(mode, "name", None) or getattr(mode, "id", None)
    if not title:
        return None
    tests = getattr(mode, "affected_tests", None) or getattr(mode, "tests", None)
    n = len(tests) if isinstance(tests, (list, tuple, set)) else tests
    status = getattr(mode, "status", None) or getattr(mode, "baseline_status", None)
    bits = [str(title)]
    if n is not None:
        bits.append(f"{n} tests")
    if status:
        bits.append(str(status))
    return "  - " + " — ".join(bits)


def summary_lines(result: SessionResult, gate_line: str | None, fault_line: str | None = None,
                  swept_line: str | None = None) -> list[str]:
    """The lines we print: capture totals, analysis summary, where the report is, the gate.

    Our own failure is the single ``fault_line`` (it already says what was kept).
    """
    s = result.stats
    lines: list[str] = []
    if fault_line:
        lines.append(fault_line)
    elif result.traces_written:
        lines.append(f"halo: captured {s.spans} spans in {s.traces} traces from {result.n_tests} tests "
                     f"({result.n_failing} failing) -> {_rel(result.traces_path)}")
    if swept_line:
        lines.append(swept_line)
    if s.spans == 0 and not fault_line:
        lines.append("halo: no spans captured - halo records spans sent to the global OpenTelemetry TracerProvider, "
                     "openai-agents and pytest_halo.trace_*; an instrumentation given its own TracerProvider "
                     "(instrument(tracer_provider=...)) bypasses it: drop tracer_provider= or pass "
                     "trace.get_tracer_provider()")
    if (s.bad_lines or s.duplicates) and not fault_line:  # a fault's torn line is part of that one line
        lines.append(f"halo: merge skipped {s.bad_lines} torn lines and {s.duplicates} duplicate spans")
    for w in result.crashed_workers:
        lines.append(f"halo: worker {w} crashed; spans it had not flushed are lost")
    lines.extend(result.notes)
    if result.analysis_error is not None:
        lines.append(f"halo: analysis failed: {result.analysis_error}")
    outcome = result.outcome
    if outcome is not None:
        given = list(getattr(outcome, "summary_lines", None) or [])
        if given:
            lines.extend(str(x) for x in given)
        else:
            modes = list(getattr(getattr(outcome, "findings", None), "failure_modes", None) or [])
            lines.append(f"halo: {len(modes)} failure modes")
            lines.extend(x for x in (_mode_line(m) for m in modes[:TOP_N]) if x)
        report = result.halo_dir / "report.md"
        if report.exists() and not any("report.md" in str(x) for x in given):
            lines.append(f"halo: report -> {_rel(report)}")
    if gate_line:
        lines.append(gate_line)
    return [_safe(x) for x in lines]


def _safe(line: str) -> str:
    """One terminal line: exception texts, failure-mode titles and notes carry trace content."""
    indent = line[: len(line) - len(line.lstrip(" "))]
    return indent + clean_line(line)


def write_summary(terminalreporter: Any, result: SessionResult, gate_line: str | None,
                  fault_line: str | None = None, swept_line: str | None = None) -> None:
    tr = terminalreporter
    try:
        tr.write_sep("-", "halo")
        for line in summary_lines(result, gate_line, fault_line, swept_line):
            red = line.startswith(("halo: GATE FAILED", "halo: analysis failed"))
            yellow = line.startswith("halo: WARNING")
            tr.write_line(line, red=red, bold=red or yellow, yellow=yellow)
    except (BrokenPipeError, ValueError):  # reader gone (``| head``) or stream closed: nothing to tell
        pass
