"""``report.md``: the findings for people — summary table, each mode with evidence and an excerpt, the gate.

Everything that came from a trace is untrusted: it is escaped for Markdown (no links, images,
HTML, mentions or table breaks can be injected) and excerpts go in fenced blocks whose fence is
longer than any backtick run inside.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.findings import Findings, GateEntry

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|<>~@&:$])")
_WWW = re.compile(r"(?i)\b(www)\.")
_BACKTICKS = re.compile(r"`+")


def md_escape(text: object) -> str:
    """Escape untrusted text for inline Markdown (one line: newlines become spaces)."""
    s = " ".join(str(text).split())
    return _WWW.sub(r"\1\\.", _MD_SPECIAL.sub(r"\\\1", s))


def md_code_block(text: str) -> str:
    """A fenced code block that untrusted content cannot close early."""
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _gate_rows(title: str, entries: list[GateEntry]) -> list[str]:
    if not entries:
        return []
    out = [f"**{title}** ({len(entries)})", ""]
    for e in entries:
        p = f", p={e.p_value:.3g}" if e.p_value is not None else ""
        note = f" — {md_escape(e.note)}" if e.note else ""
        out.append(
            f"- `{e.id}` {md_escape(e.title)}: {e.baseline_runs}/{e.baseline_total} → "
            f"{e.candidate_runs}/{e.candidate_total} runs{p}{note}"
        )
    out.append("")
    return out


def render_report(f: Findings) -> str:
    """The whole report as a Markdown string."""
    d, g = f.dataset, f.gate
    status = {e.id: "new" for e in g.new}
    status.update({e.id: "regressed" for e in g.regressed})
    status.update({e.id: "persisting" for e in g.persisting})
    status.update({e.id: "emerging" for e in g.emerging})
    lines = ["# pytest-halo failure modes", ""]
    verdict = f"**Gate: {g.verdict.upper()}** (fail-on `{g.fail_on}`)"
    lines += [
        verdict,
        "",
        f"Analysed **{d.spans}** spans in **{d.traces}** traces from {len(d.files)} file(s); "
        f"**{d.runs}** runs counted as {d.run_unit}"
        + (f", **{d.failing_tests}** failing" if d.run_unit == "tests" else "")
        + (f"; {d.skipped} bad records skipped" if d.skipped else "")
        + ".",
        "",
    ]
    if f.failure_modes:
        lines += [
            "| # | Id | Failure mode | Category | Runs | Failing | Prevalence | Status |",
            "|---|----|--------------|----------|-----:|--------:|-----------:|--------|",
        ]
        for i, m in enumerate(f.failure_modes, 1):
            lines.append(
                f"| {i} | `{m.id}` | {md_escape(m.title)} | {md_escape(m.category)} | {m.run_count} | "
                f"{m.failing_test_count} | {_pct(m.prevalence)} | {status.get(m.id, '—')} |"
            )
        lines.append("")
    else:
        lines += ["No systemic failure modes found.", ""]
    for i, m in enumerate(f.failure_modes, 1):
        lines += [f"## {i}. {md_escape(m.title)}", ""]
        lines.append(
            f"`{m.id}` · {md_escape(m.category)} · source {m.source} · {m.run_count} runs "
            f"({_pct(m.prevalence)}), {m.test_count} tests, {m.failing_test_count} failing, {m.trace_count} traces"
        )
        lines.append("")
        if m.systemic_because:
            lines += ["Systemic because: " + md_escape("; ".join(m.systemic_because)), ""]
        if m.enrichment:
            e = m.enrichment
            lines += [
                f"In failing runs {e.failing_with}/{e.failing_total} vs passing {e.passing_with}/{e.passing_total} "
                f"(Fisher p={e.p_value:.2g}, BH q={e.q_value:.2g}).",
                "",
            ]
        for k, vals in m.details.items():
            lines += [f"{md_escape(k)}: " + ", ".join(md_escape(v) for v in vals), ""]
        if m.suggested_fix:
            lines += [f"**Suggested fix:** {md_escape(m.suggested_fix)}", ""]
        if m.example:
            lines += ["Example:", "", md_code_block(m.example), ""]
        if m.evidence:
            lines += ["Evidence:", ""]
            for ev in m.evidence:
                test = f" (test {md_escape(ev.test_nodeid)})" if ev.test_nodeid else ""
                lines.append(f"- trace `{md_escape(ev.trace_id)}` span `{md_escape(ev.span_id)}`{test}")
            lines.append("")
    lines += ["## Gate", ""]
    lines.append(f"Baseline: {md_escape(g.baseline) if g.baseline else 'none'}")
    lines.append("")
    for title, entries in (
        ("New", g.new),
        ("Regressed", g.regressed),
        ("Emerging (unseen in a small baseline)", g.emerging),
        ("Persisting", g.persisting),
        ("Resolved", g.resolved),
    ):
        lines += _gate_rows(title, entries)
    for note in g.notes + f.notes:
        lines += [f"> {md_escape(note)}", ""]
    if f.one_offs:
        lines += ["## One-offs (not systemic)", ""]
        for o in f.one_offs[:50]:
            lines.append(f"- `{o.id}` {md_escape(o.title)} — {o.run_count} run(s); {md_escape(o.reason)}")
        if len(f.one_offs) > 50:
            lines.append(f"- … {len(f.one_offs) - 50} more in findings.json")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_report(findings: Findings, path: Path) -> None:
    path.write_text(render_report(findings), encoding="utf-8")
