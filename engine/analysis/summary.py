"""The few terminal lines a person reads after a run: size, top modes, gate, where the report is."""

from __future__ import annotations

import os
from pathlib import Path

from engine.findings import Findings

TOP_N = 6
MAX_TITLE = 72


def _short(text: str, n: int = MAX_TITLE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def summary_lines(findings: Findings, report: Path | None = None) -> list[str]:
    """At most ~12 short lines."""
    d = findings.dataset
    g = findings.gate
    status = {e.id: "new" for e in g.new}
    status.update({e.id: "regressed" for e in g.regressed})
    status.update({e.id: "persisting" for e in g.persisting})
    status.update({e.id: "emerging" for e in g.emerging})
    runs = f"{d.runs} {d.run_unit}" + (f" ({d.failing_tests} failing)" if d.run_unit == "tests" else "")
    lines = [
        f"halo: analysed {d.spans} spans in {d.traces} traces, {runs}: "
        f"{len(findings.failure_modes)} failure modes, {len(findings.one_offs)} one-offs"
        + (f", {d.skipped} bad records skipped" if d.skipped else "")
    ]
    for m in findings.failure_modes[:TOP_N]:
        unit = "tests" if d.run_unit == "tests" else "traces"
        counts = f"{m.run_count} {unit}" + (f", {m.failing_test_count} failing" if d.run_unit == "tests" else "")
        tag = f" [{status[m.id]}]" if m.id in status else ""
        lines.append(f"  {m.id} {_short(m.title)} ({counts}){tag}")
    if len(findings.failure_modes) > TOP_N:
        lines.append(f"  … and {len(findings.failure_modes) - TOP_N} more in the report")
    if g.baseline:
        lines.append(
            f"halo: gate vs {g.baseline}: {len(g.new)} new, {len(g.regressed)} regressed, "
            f"{len(g.persisting)} persisting, {len(g.resolved)} resolved -> {g.verdict.upper()} (fail-on={g.fail_on})"
        )
    else:
        lines.append(f"halo: no baseline; verdict {g.verdict.upper()} (fail-on={g.fail_on})")
    lines.extend(f"halo: {n}" for n in g.notes if n.startswith("baseline updated"))
    if report is not None:
        lines.append(f"halo: report -> {_rel(report)}")
    return lines
