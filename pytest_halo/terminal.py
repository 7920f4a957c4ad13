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


def _rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


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
        lines.extend(outcome.summary_lines)
        report = result.halo_dir / "report.md"
        if report.exists() and not any("report.md" in x for x in outcome.summary_lines):
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
