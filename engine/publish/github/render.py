"""The Markdown we publish on GitHub: the sticky comment, the job summary and the check run's summary.

One renderer, three budgets. The verdict is the first line; then new and regressed modes (their
tests, an evidence excerpt, the suggested fix), the resolved/persisting counts, a table of the top
modes with prevalence now vs the baseline, a Mermaid ``xychart-beta`` of the same, the LLM cost,
and our links. Sections are added whole while they fit the budget, so a truncated body never
leaves a code fence open. Trace text only enters through ``text.md_*``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.findings import FailureMode, Findings, GateEntry, mode_order
from engine.publish.github.chart import prevalence_chart
from engine.publish.github.text import md_block, md_code, md_text

COMMENT_LIMIT = 65_536
COMMENT_BUDGET = 60_000
CHECK_BUDGET = 60_000  # check-run output.summary is capped at 65,535 characters
SUMMARY_BUDGET = 900_000  # GITHUB_STEP_SUMMARY refuses more than 1 MiB per step
TOP_MODES = 10
TESTS_PER_MODE = 5
EXCERPT_CHARS = 700
FIX_CHARS = 500


@dataclass(frozen=True)
class Links:
    """The only links we publish: the run and its report artifact."""

    run: str | None = None
    report: str | None = None


@dataclass
class Rendered:
    """A rendered body and what was left out to keep it under budget."""

    text: str
    omitted: list[str] = field(default_factory=list)


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _rate(runs: int, total: int) -> float | None:
    return runs / total if total else None


def has_baseline(f: Findings) -> bool:
    return bool(f.gate.baseline)


def all_clear(f: Findings) -> bool:
    """Nothing systemic remains: no failure modes at all and nothing the gate flags (a baseline mode whose
    tests did not run is not known to be gone)."""
    g = f.gate
    return not f.failure_modes and not g.new and not g.regressed and not g.not_rerun and g.verdict == "pass"


def verdict_line(f: Findings) -> str:
    g = f.gate
    n_new, n_reg = len(g.new), len(g.regressed)
    if g.verdict == "fail":
        why = []
        if n_new:
            why.append(f"{n_new} new")
        if n_reg:
            why.append(f"{n_reg} regressed")
        detail = " and ".join(why) + " systemic failure mode" + ("s" if n_new + n_reg != 1 else "")
        if not why:
            detail = f"{len(f.failure_modes)} systemic failure mode(s)"
        return f"❌ **pytest-halo: gate failed** — {detail} (fail-on `{g.fail_on}`)"
    if all_clear(f):
        return "✅ **pytest-halo: all clear** — no systemic failure modes"
    if not has_baseline(f):
        return (f"ℹ️ **pytest-halo: {len(f.failure_modes)} systemic failure mode(s), not gated** "
                "— no baseline yet")
    return (f"✅ **pytest-halo: gate passed** — no new systemic failure modes "
            f"({len(f.failure_modes)} known, fail-on `{g.fail_on}`)")


def _counts_line(f: Findings) -> str:
    g, d = f.gate, f.dataset
    parts = [f"{len(f.failure_modes)} systemic"]
    if has_baseline(f):
        parts += [f"{len(g.new)} new", f"{len(g.regressed)} regressed", f"{len(g.persisting)} persisting",
                  f"{len(g.resolved)} resolved"]
        if g.emerging:
            parts.append(f"{len(g.emerging)} emerging")
        if g.not_rerun:
            parts.append(f"{len(g.not_rerun)} not re-run")
    parts.append(f"{d.runs} {d.run_unit} analysed ({d.failing_tests} failing tests)")
    return " · ".join(parts)


def _tests_of(m: FailureMode) -> list[str]:
    seen: list[str] = []
    for e in m.evidence:
        if e.test_nodeid and e.test_nodeid not in seen:
            seen.append(e.test_nodeid)
    return seen


def _mode_section(kind: str, m: FailureMode | None, entry: GateEntry) -> str:
    title = m.title if m else entry.title
    lines = [f"#### {kind}: {md_text(title, 200)}", ""]
    before = _rate(entry.baseline_runs, entry.baseline_total)
    now = _rate(entry.candidate_runs, entry.candidate_total)
    facts = [f"id {md_code(entry.id)}"]
    if m is not None:
        facts.append(f"category {md_code(m.category)}")
        facts.append(f"{m.run_count} runs ({_pct(m.prevalence)}), {m.failing_test_count} failing tests")
    if before is not None and now is not None:
        facts.append(f"baseline {_pct(before)} → now {_pct(now)}")
    if entry.p_value is not None:
        facts.append(f"p = {entry.p_value:.3g}")
    lines.append(" · ".join(facts))
    if m is not None:
        tests = _tests_of(m)
        if tests:
            shown = ", ".join(md_code(t, 160) for t in tests[:TESTS_PER_MODE])
            more = f" and {len(tests) - TESTS_PER_MODE} more" if len(tests) > TESTS_PER_MODE else ""
            lines += ["", f"Tests: {shown}{more}"]
        if m.example:
            lines += ["", "Evidence:", "", md_block(m.example, EXCERPT_CHARS)]
        if m.suggested_fix:
            lines += ["", f"Suggested fix: {md_text(m.suggested_fix, FIX_CHARS)}"]
    return "\n".join(lines) + "\n"


def _table(f: Findings, modes: Sequence[FailureMode]) -> str:
    status = f.gate.status_by_id()
    base = {e.id: e for e in (*f.gate.persisting, *f.gate.regressed, *f.gate.new, *f.gate.emerging)}
    rows = ["| # | mode | category | now | baseline | status |", "|---|---|---|---|---|---|"]
    for i, m in enumerate(modes, 1):
        e = base.get(m.id)
        before = _rate(e.baseline_runs, e.baseline_total) if e else None
        b = _pct(before) if before is not None else ("0.0%" if e is not None else "—")
        rows.append(f"| M{i} | {md_text(m.title, 120)} | {md_code(m.category, in_table=True)} | {_pct(m.prevalence)} "
                    f"| {b} | {status.get(m.id, 'not gated')} |")
    return "\n".join(rows) + "\n"


def _llm_line(f: Findings) -> str | None:
    if f.llm is None:
        return None
    return f.llm.describe(lambda model: md_code(model, 60), lambda why: md_text(why, 80))


def _links_line(links: Links) -> str | None:
    parts = []
    if links.report:
        parts.append(f"[full report (artifact)]({links.report})")
    if links.run:
        parts.append(f"[workflow run]({links.run})")
    return " · ".join(parts) if parts else None


def render(
    f: Findings,
    *,
    links: Links,
    budget: int,
    notices: Sequence[str] = (),
    footer: str = "",
    extra_notes: Sequence[str] = (),
) -> Rendered:
    """The whole body. ``footer`` (the hidden marker) is always kept; ``notices`` are ours, shown as text."""
    g = f.gate
    head: list[str] = [verdict_line(f), "", _counts_line(f), ""]
    for n in notices:
        head += [f"> [!WARNING]\n> {md_text(n, 600)}", ""]
    if not has_baseline(f):
        head += ["No baseline yet: this run is reported without gating. Push to the default branch with the "
                 "action (`baseline: artifact`) to save one; pull requests then gate against it.", ""]
    for note in extra_notes:
        head += [md_text(note, 400), ""]

    tail: list[str] = []
    llm = _llm_line(f)
    if llm:
        tail += [llm, ""]
    link = _links_line(links)
    if link:
        tail += [link, ""]
    if footer:
        tail.append(footer)

    fixed = "\n".join(head) + "\n" + "\n".join(tail)
    room = budget - len(fixed)
    body: list[str] = []
    omitted: list[str] = []

    def add(chunk: str, label: str) -> bool:
        nonlocal room
        if len(chunk) + 1 <= room:
            body.append(chunk)
            room -= len(chunk) + 1
            return True
        omitted.append(label)
        return False

    flagged = [("New", e) for e in g.new] + [("Regressed", e) for e in g.regressed]
    if flagged:
        add("### New and regressed failure modes\n", "heading")
        for i, (kind, e) in enumerate(flagged):
            if not add(_mode_section(kind, f.mode(e.id), e), f"{kind.lower()} mode {e.id}"):
                left = len(flagged) - i
                add(f"_… {left} more new or regressed mode(s) in the full report._\n", "more")
                break
    if has_baseline(f) and (g.resolved or g.persisting or g.not_rerun):
        rerun = f" · **Not re-run** (none of their tests ran): {len(g.not_rerun)}" if g.not_rerun else ""
        add(f"**Resolved:** {len(g.resolved)} · **Persisting:** {len(g.persisting)}{rerun}\n", "counts")
    modes = sorted(f.failure_modes, key=mode_order)[:TOP_MODES]
    if modes:
        add("### Top failure modes\n\n" + _table(f, modes), "table")
        chart = prevalence_chart(f, modes)
        if chart:
            add(chart, "chart")
        if len(f.failure_modes) > TOP_MODES:
            add(f"_{len(f.failure_modes) - TOP_MODES} more in the full report._\n", "more modes")
    text = "\n".join(head) + "\n" + "\n".join(body) + ("\n" if body else "") + "\n".join(tail)
    return Rendered(text=text.rstrip("\n") + "\n", omitted=omitted)


def render_all_clear(f: Findings, *, links: Links, footer: str = "") -> str:
    """The collapsed body an existing comment becomes when nothing systemic remains."""
    lines = [verdict_line(f), ""]
    if f.gate.resolved:
        lines += [f"{len(f.gate.resolved)} failure mode(s) resolved since the baseline.", ""]
    link = _links_line(links)
    if link:
        lines += [link, ""]
    if footer:
        lines.append(footer)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_minimal(f: Findings, *, links: Links, footer: str = "") -> str:
    """The fallback when GitHub refuses the full body (422): the verdict, the counts and our links."""
    lines = [verdict_line(f), "", _counts_line(f), "", "The full details did not fit in a comment; see the report."]
    link = _links_line(links)
    if link:
        lines += ["", link]
    if footer:
        lines += ["", footer]
    return "\n".join(lines) + "\n"
