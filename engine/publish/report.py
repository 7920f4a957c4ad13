"""``report.md``: the findings for a person with a minute — what failed, why, and what the gate says.

Order of reading: a headline that states the tests and the gate separately, what changed since
the baseline, then one section per *root cause* (modes that share their runs, largest first) with
its facets, statistics in words, the suggested fix, an excerpt and the failing tests. Ids,
p-values and evidence rows sit in collapsed ``<details>`` blocks. The LLM engine's answer, its
unverified patterns and rejected proposals come after, kept apart from verified modes.

Everything from a trace is untrusted and goes through ``engine.publish.markdown`` (cleaned,
escaped only where Markdown needs it, mentions broken, excerpts fenced).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.findings import CodeLocation, DatasetSummary, FailureMode, Findings, Gate, GateEntry
from engine.findings_words import in_words, outcome_phrase, plural
from engine.publish.markdown import md_block, md_cell, md_code, md_details, md_prose, md_text, md_title
from engine.root_cause_groups import facet_label, groups
from engine.safe_io import atomic_write_text

MAX_TESTS_LISTED = 10
MAX_CHANGES_NAMED = 5
MAX_ONE_OFFS = 50
MAX_SECTIONS = 50
PLACEHOLDERS = ("<*>", "<URL>", "<PATH>", "<EMAIL>", "<UUID>", "<HEX>")
PLACEHOLDER_NOTE = (
    "In titles, `<*>` stands for a part that varied between occurrences (an id, a number, a quoted "
    "value); `<URL>`, `<PATH>`, `<EMAIL>`, `<UUID>` and `<HEX>` likewise."
)


def gate_phrase(g: Gate) -> str:
    """The gate in words, apart from the tests: "gate: no new failure modes vs baseline"."""
    vs = "vs baseline"
    if g.verdict == "fail":
        if g.new or g.regressed:
            bits = [f"{len(g.new)} new" if g.new else "", f"{len(g.regressed)} regressed" if g.regressed else ""]
            return f"gate: FAILED — {' and '.join(b for b in bits if b)} failure {'mode' if len(g.failing_ids) == 1 else 'modes'} {vs}"
        if g.fail_on == "any" and g.failing_ids:
            return f"gate: FAILED — {plural(len(g.failing_ids), 'failure mode')} found (fail-on any)"
        reason = md_text(g.notes[0]) if g.notes else "see the notes"  # notes may quote mode titles
        return f"gate: FAILED — {reason}"
    if not g.baseline:
        if g.fail_on == "any":  # gates without a baseline
            return "gate: passed, no systemic failure mode (fail-on any)"
        return "gate: not gated — no baseline to compare with"
    if g.new or g.regressed:
        n = len(g.new) + len(g.regressed)
        return f"gate: passed with {plural(n, 'new or regressed mode')} {vs} (fail-on {g.fail_on})"
    emerging = f" ({len(g.emerging)} emerging, not gated)" if g.emerging else ""
    return f"gate: no new failure modes {vs}{emerging}"


def _change_list(entries: Sequence[GateEntry]) -> str:
    named = ", ".join(f"{md_title(e.title)} ({md_code(e.id)})" for e in entries[:MAX_CHANGES_NAMED])
    more = f" and {len(entries) - MAX_CHANGES_NAMED} more" if len(entries) > MAX_CHANGES_NAMED else ""
    return named + more


def _changes(g: Gate) -> list[str]:
    if not g.baseline:
        return [
            "No baseline given, so nothing to compare: record one with "
            "`pytest --halo --halo-baseline FILE --halo-update-baseline` and later runs are gated against it.",
            "",
        ]
    rows = [
        (label, entries)
        for label, entries in (
            ("New", g.new),
            ("Regressed", g.regressed),
            ("Emerging (unseen in a small baseline, not gated)", g.emerging),
            ("Resolved", g.resolved),
            ("Not re-run (none of their tests ran in this run; neither resolved nor persisting)", g.not_rerun),
        )
        if entries
    ]
    if not rows:
        return [f"Since the baseline: no changes ({plural(len(g.persisting), 'mode')} persisting).", ""]
    out = ["Since the baseline:", ""]
    out += [f"- **{label}**: {_change_list(entries)}" for label, entries in rows]
    if g.persisting:
        out.append(f"- {plural(len(g.persisting), 'mode')} persisting")
    return [*out, ""]


def _failing_tests(members: Sequence[FailureMode]) -> list[str]:
    seen: dict[str, None] = {}
    for m in members:
        for ev in m.evidence:
            if ev.test_nodeid:
                seen.setdefault(ev.test_nodeid, None)
    return sorted(seen)


def _facet_line(m: FailureMode, d: DatasetSummary, status: dict[str, str]) -> str:
    tag = f" · **{status[m.id]}**" if m.id in status else ""
    return f"- {facet_label(m.category)}: {md_title(m.title)} — {in_words(m, d)}{tag}"


def _stats_details(members: Sequence[FailureMode], d: DatasetSummary, status: dict[str, str]) -> str:
    rows = [
        "| Facet | Id | Runs | Prevalence | Fisher p | BH q | Status | Source |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for m in members:
        e = m.enrichment
        p = f"{e.p_value:.2g}" if e else "—"
        q = f"{e.q_value:.2g}" if e else "—"
        rows.append(
            f"| {md_cell(facet_label(m.category))} | {md_code(m.id, in_table=True)} | {m.run_count} | "
            f"{m.prevalence:.1%} | {p} | {q} | {status.get(m.id, '—')} | {m.source} |"
        )
    body = ["\n".join(rows), ""]
    for m in members:
        if m.systemic_because:
            body.append(f"{md_code(m.id)} is systemic because it " + md_text("; ".join(m.systemic_because)) + ".")
            body.append("")
        for k, vals in m.details.items():
            body += [f"{md_code(m.id)} {md_text(k)}: " + ", ".join(md_code(v) for v in vals), ""]
        if m.evidence:
            body.append(f"Evidence for {md_code(m.id)}:")
            body.append("")
            for ev in m.evidence:
                test = f" in {md_code(ev.test_nodeid)}" if ev.test_nodeid else ""
                body.append(f"- trace {md_code(ev.trace_id)} span {md_code(ev.span_id)}{test}")
            body.append("")
    return md_details("Ids, statistics and evidence", "\n".join(body))


def _root_cause_section(
    i: int, members: Sequence[FailureMode], d: DatasetSummary, status: dict[str, str]
) -> list[str]:
    lead = members[0]
    out = [f"## {i}. {md_title(lead.title)}", ""]
    tag = f" · **{status[lead.id]}**" if lead.id in status else ""
    src = " · found by the detectors and the LLM engine" if lead.source == "both" else (
        " · found by the LLM engine" if lead.source == "llm" else "")
    out += [f"Seen {in_words(lead, d)} · {md_code(lead.id)}{tag}{src}.", ""]
    if lead.description:
        out += [md_title(lead.description), ""]
    if len(members) > 1:
        out += ["Facets (modes in the same runs, each with its own id):", ""]
        out += [_facet_line(m, d, status) for m in members]
        out.append("")
    fixes = [m.suggested_fix for m in members if m.suggested_fix]
    if fixes:
        out += [f"**Suggested fix:** {md_title(fixes[0])}", ""]
    places: dict[tuple[str, int], CodeLocation] = {}  # facets of one root cause share a tool's definition
    for loc in (loc for m in members for loc in m.locations):
        places.setdefault((loc.path, loc.line), loc)
    locations = list(places.values())
    if locations:
        out += ["Where in the code:", ""]
        for loc in locations[:5]:
            why = md_title(loc.why) if loc.why else md_text(loc.kind.replace("_", " "))
            out.append(f"- {md_code(f'{loc.path}:{loc.line}')} — {why}")
        out.append("")
    changes = sorted({m.suspected_change for m in members if m.suspected_change})
    if changes:
        out += ["Suspected change: " + ", ".join(md_code(c) for c in changes), ""]
    example = next((m.example for m in members if m.example), None)
    if example:
        out += ["Example:", "", md_block(example), ""]
    tests = _failing_tests(members)
    if tests:
        out += ["Tests:", ""]
        out += [f"- {md_code(t)}" for t in tests[:MAX_TESTS_LISTED]]
        if len(tests) > MAX_TESTS_LISTED:
            out.append(f"- … {len(tests) - MAX_TESTS_LISTED} more in findings.json")
        out.append("")
    out += [_stats_details(members, d, status), ""]
    return out


def _overview(roots: Sequence[Sequence[FailureMode]], d: DatasetSummary, status: dict[str, str]) -> list[str]:
    tests = d.run_unit == "tests" and bool(d.tests)
    col = ("Failing tests" if d.failing_tests else "Tests") if tests else "Traces"
    rows = [f"| # | Root cause | Facets | {col} | Status |", "|---:|---|---|---:|---|"]
    for i, members in enumerate(roots, 1):
        lead = members[0]
        facets = ", ".join(dict.fromkeys(facet_label(m.category) for m in members))
        if col == "Failing tests":
            count = f"{max(m.failing_test_count for m in members)} of {d.failing_tests}"
        elif col == "Tests":
            count = f"{max(m.test_count for m in members)} of {d.tests}"
        else:
            count = f"{max(m.run_count for m in members)} of {d.runs}"
        st = ", ".join(dict.fromkeys(status[m.id] for m in members if m.id in status)) or "—"
        rows.append(f"| {i} | {md_title(lead.title, in_table=True)} | {md_cell(facets)} | {count} | {st} |")
    return ["\n".join(rows), ""]


def _llm_section(f: Findings, unverified: Sequence[FailureMode], d: DatasetSummary) -> list[str]:
    if not (f.llm or f.llm_answer or f.rejected or unverified):
        return []
    out = ["## LLM analysis", ""]
    t = f.llm
    if t is not None:
        out += [t.describe(md_code, md_text), ""]
    if f.llm_answer:
        out += ["### Answer", "", md_prose(f.llm_answer, min_heading=4), ""]
    if unverified:
        out += [
            "### Unverified patterns",
            "",
            "Proposed by the LLM engine with no checkable signature: not re-found by the detectors, "
            "never gated or tracked. Read them as leads, not findings.",
            "",
        ]
        for m in unverified:
            conf = f", confidence {m.confidence:.0%}" if m.confidence is not None else ""
            seen = f" — {in_words(m, d)}" if m.run_count else ""
            out.append(f"- **unverified:** {md_title(m.title)} ({md_code(m.id)}{conf}){seen}")
            if m.description:
                out.append(f"  {md_text(m.description)}")
        out.append("")
    if f.rejected:
        out += ["### Rejected proposals", ""]
        for r in f.rejected:
            out.append(f"- {md_title(r.title)} — {md_text(r.reason)} (round {r.round})")
        out.append("")
    return out


def _gate_entry(e: GateEntry) -> str:
    p = f", p={e.p_value:.3g}" if e.p_value is not None else ""
    note = f" — {md_text(e.note)}" if e.note else ""
    return (
        f"- {md_code(e.id)} {md_title(e.title)}: {e.baseline_runs} of {e.baseline_total} baseline runs → "
        f"{e.candidate_runs} of {e.candidate_total} now{p}{note}"
    )


def _gate_section(g: Gate) -> list[str]:
    out = ["## Gate", "", f"{gate_phrase(g)}; fail-on {md_code(g.fail_on)}; baseline "
           + (md_code(g.baseline) if g.baseline else "none") + ".", ""]
    groups_ = [("New", g.new), ("Regressed", g.regressed), ("Emerging", g.emerging),
               ("Persisting", g.persisting), ("Resolved", g.resolved), ("Not re-run", g.not_rerun)]
    body = []
    for title, entries in groups_:
        if entries:
            body += [f"**{title}** ({len(entries)})", "", *(_gate_entry(e) for e in entries), ""]
    if body:
        out += [md_details("Gate entries with run counts and p-values", "\n".join(body)), ""]
    return out


def render_report(f: Findings) -> str:
    """The whole report as a Markdown string."""
    d, g = f.dataset, f.gate
    status = g.status_by_id()
    verified = [m for m in f.failure_modes if m.verified]
    unverified = [m for m in f.failure_modes if not m.verified]
    roots = groups(verified)
    lines = ["# pytest-halo report", "", f"**{outcome_phrase(d)} · {gate_phrase(g)}**", ""]
    lines += _changes(g)
    if roots:
        lines.append(
            f"{plural(len(roots), 'root cause')} ({plural(len(verified), 'failure mode')}) "
            f"in {plural(d.spans, 'span')} from {plural(d.traces, 'trace')}"
            + (f"; {plural(d.skipped, 'bad record')} skipped" if d.skipped else "")
            + "."
        )
        lines.append("")
        lines += _overview(roots, d, status)
        if any(p in m.title for m in verified for p in PLACEHOLDERS):
            lines += [PLACEHOLDER_NOTE, ""]
    else:
        lines += [f"No systemic failure modes in {plural(d.spans, 'span')} from {plural(d.traces, 'trace')}.", ""]
    for i, members in enumerate(roots[:MAX_SECTIONS], 1):
        lines += _root_cause_section(i, members, d, status)
    if len(roots) > MAX_SECTIONS:
        lines += [f"{len(roots) - MAX_SECTIONS} smaller root causes are in the table above and in findings.json.", ""]
    lines += _llm_section(f, unverified, d)
    lines += _gate_section(g)
    notes = [n for n in g.notes + f.notes if n]
    if notes:
        lines += ["## Notes", "", *(f"- {md_text(n)}" for n in notes), ""]
    if f.one_offs:
        lines += ["## One-offs (seen too rarely to be systemic; not gated)", ""]
        for o in f.one_offs[:MAX_ONE_OFFS]:
            lines.append(f"- {md_title(o.title)} ({md_code(o.id)}): {plural(o.run_count, 'run')}; {md_text(o.reason)}")
        if len(f.one_offs) > MAX_ONE_OFFS:
            lines.append(f"- … {len(f.one_offs) - MAX_ONE_OFFS} more in findings.json")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_report(findings: Findings, path: Path) -> None:
    atomic_write_text(path, render_report(findings))
