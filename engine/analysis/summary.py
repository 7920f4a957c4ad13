"""The few terminal lines a person reads after a run: tests and gate, root causes, changes, the report.

Every line is cleaned (``engine.sanitize.clean_line``): titles come from traces, and a trace must
not be able to move the cursor, clear the screen or print a secret.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from engine.findings import DatasetSummary, FailureMode, Findings, Gate, GateEntry
from engine.findings_words import outcome_phrase, plural
from engine.root_cause_groups import facet_label, groups
from engine.sanitize import clean_line

TOP_N = 6
MAX_TITLE = 72
MAX_CHANGES_NAMED = 3


def _short(text: str, n: int = MAX_TITLE) -> str:
    text = clean_line(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _gate(g: Gate) -> str:
    if g.verdict == "fail":
        if g.new or g.regressed:
            bits = [f"{len(g.new)} new" if g.new else "", f"{len(g.regressed)} regressed" if g.regressed else ""]
            return f"gate: FAILED, {' and '.join(b for b in bits if b)} vs baseline (fail-on={g.fail_on})"
        if g.fail_on == "any" and g.failing_ids:
            return f"gate: FAILED, {plural(len(g.failing_ids), 'failure mode')} found (fail-on=any)"
        return "gate: FAILED" + (f", {clean_line(g.notes[0])}" if g.notes else "")
    if not g.baseline:
        if g.fail_on == "any":  # gates without a baseline
            return "gate: passed, no systemic failure mode (fail-on=any)"
        return f"gate: not gated — no baseline to compare with (fail-on={g.fail_on})"
    if g.new or g.regressed:
        return f"gate: passed with {len(g.new) + len(g.regressed)} new or regressed vs baseline (fail-on={g.fail_on})"
    emerging = f", {len(g.emerging)} emerging" if g.emerging else ""
    return f"gate: no new failure modes vs baseline (fail-on={g.fail_on}{emerging})"


def _count(members: list[FailureMode], d: DatasetSummary) -> str:
    if d.run_unit == "tests" and d.tests:
        if not d.failing_tests:
            return f"{max(m.test_count for m in members)} tests, all passing"
        return f"{max(m.failing_test_count for m in members)} of {d.failing_tests} failing tests"
    return f"{max(m.run_count for m in members)} of {plural(d.runs, 'trace')}"


def _named(entries: list[GateEntry]) -> str:
    names = ", ".join(f"{_short(e.title, 40)} ({e.id})" for e in entries[:MAX_CHANGES_NAMED])
    return names + (f" +{len(entries) - MAX_CHANGES_NAMED} more" if len(entries) > MAX_CHANGES_NAMED else "")


def _changes(g: Gate) -> str | None:
    if not g.baseline:
        return None
    parts = [f"{label} {_named(entries)}" for label, entries in (("new:", g.new), ("regressed:", g.regressed),
                                                                 ("emerging:", g.emerging)) if entries]
    if g.resolved:
        parts.append(f"{len(g.resolved)} resolved")
    if g.not_rerun:
        parts.append(f"{len(g.not_rerun)} not re-run (none of their tests ran)")
    persisting = f"{plural(len(g.persisting), 'mode')} persisting"
    if not parts:
        return f"halo: since baseline: no changes ({persisting})"
    return "halo: since baseline: " + "; ".join(parts) + (f"; {persisting}" if g.persisting else "")


def summary_lines(findings: Findings, report: Path | None = None, other_outputs: Sequence[str] = ()) -> list[str]:
    """At most ~12 short lines."""
    d, g = findings.dataset, findings.gate
    status = {i: s for i, s in g.status_by_id().items() if s != "persisting"}
    verified = [m for m in findings.failure_modes if m.verified]
    roots = groups(verified)
    lines = [f"halo: {outcome_phrase(d)} · {_gate(g)}"]
    extra = [f"{plural(len(findings.one_offs), 'one-off')}"]
    if len(verified) != len(findings.failure_modes):
        extra.append(f"{len(findings.failure_modes) - len(verified)} unverified LLM patterns")
    if d.skipped:
        extra.append(f"{d.skipped} bad records skipped")
    found = (
        f"{plural(len(roots), 'root cause')} ({plural(len(verified), 'failure mode')})"
        if roots
        else "no systemic failure modes"
    )
    lines.append(f"halo: {found} in {d.spans} spans, {plural(d.traces, 'trace')}; " + ", ".join(extra))
    if findings.llm is not None:
        lines.append("halo: " + clean_line(findings.llm.describe()))  # why it stopped may quote the provider
    for i, members in enumerate(roots[:TOP_N], 1):
        lead = members[0]
        facets = [facet_label(m.category) for m in members[1:]]
        also = f" (+ {', '.join(dict.fromkeys(facets))})" if facets else ""
        tags = sorted({status[m.id] for m in members if m.id in status})
        tag = f" [{', '.join(tags)}]" if tags else ""
        lines.append(f"  {i}. {_short(lead.title)}{also} — {_count(members, d)}{tag}  {lead.id}")
    if len(roots) > TOP_N:
        lines.append(f"  … and {len(roots) - TOP_N} more in the report")
    changes = _changes(g)
    if changes:
        lines.append(changes)
    lines.extend(f"halo: {clean_line(n)}" for n in g.notes if n.startswith("baseline updated"))
    if report is not None:
        others = f" (also {', '.join(other_outputs)})" if other_outputs else ""
        lines.append(f"halo: report -> {_rel(report)}{others}")
    return lines
