"""``fix-brief.md`` / ``fix-brief.json``: the findings as work orders for a coding agent.

Per systemic mode, most important first: what happens, how often and in which tests, a few redacted
excerpts, where in the code it most likely lives, the suggested fix, and two commands — one that
reproduces the failures (``pytest <node ids>``) and one that proves the fix (``pytest --halo`` gated
against a snapshot of these findings with ``--halo-fail-on regressed``). The snapshot is written next
to the brief under a name derived from its content, so a later analysis never overwrites the baseline
a verify command points at.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from engine.findings import Evidence, FailureMode, Findings, mode_order
from engine.publish.markdown import md_block, md_code, md_text, md_title
from engine.safe_io import atomic_write_text
from engine.sanitize import clean, excerpt

BRIEF_MD = "fix-brief.md"
BRIEF_JSON = "fix-brief.json"
SNAPSHOT_DIR = "brief-baselines"
VERIFY_DIR = "verify"
MAX_REPRO_IDS = 10
MAX_EXCERPTS = 3
EXCERPT_CHARS = 400
KEEP_SNAPSHOTS = 5
MAX_CANDIDATES = 8  # evidence spans read per mode to pick the excerpts from
MAX_TRACES = 200  # evidence traces read for one brief
_FAILING = ("failed", "error")

# trace_ids -> {trace_id: [span rows]}; rows as ``engine.traces.rows.view_rows`` gives them (the same
# loader the HTML viewer gets: the evidence traces are read from the analysis's store only when needed)
TraceLoader = Callable[[Sequence[str]], Mapping[str, list[dict[str, Any]]]]

PREAMBLE = (
    "You are fixing an AI agent's harness. Each section below is a failure mode that recurs across this "
    "project's test runs, found in the traces by pytest-halo. Fix the harness — the prompts and instructions, "
    "the tool definitions and their descriptions, argument validation, error messages, retries and budgets — "
    "not the tests, and never by special-casing one test's input or overfitting to one trace: a fix must hold "
    "for the whole family of runs the mode describes. Work one mode at a time, most important first: run "
    "its reproduce command, change the code at the locations given (they are where the traces' names and "
    "error text appear in the source, a starting point, not a proof), then run its verify command; it passes "
    "only when the mode no longer shows up."
)


class BriefLocation(BaseModel):
    path: str
    line: int
    kind: str
    why: str = ""


class BriefMode(BaseModel):
    """One work order: the same fields in ``fix-brief.json`` as the sections of ``fix-brief.md``."""

    id: str
    title: str
    category: str
    what_happens: str
    pattern: str | None = None
    runs: int
    of_runs: int
    run_unit: str
    failing_test_count: int
    test_count: int
    failing_tests: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list, description="redacted, capped excerpts of what the traces show, "
                                "from distinct evidence spans (different tests where there are)")
    seen_in: list[str] = Field(default_factory=list, description="test, trace and span of a few occurrences; "
                               "when as many as the excerpts, where each excerpt was seen, in the same order")
    locations: list[BriefLocation] = Field(default_factory=list)
    suspected_change: str | None = None
    suggested_fix: str | None = None
    reproduce: str | None = None
    verify: str | None = None
    commands_note: str | None = None


class Brief(BaseModel):
    preamble: str = PREAMBLE
    run_from: str | None = Field(None, description="the directory to run every command from (the pytest rootdir)")
    baseline: str | None = Field(None, description="the snapshot of these findings the verify commands gate against")
    modes: list[BriefMode] = Field(default_factory=list)


def _pattern(m: FailureMode) -> str | None:
    if m.signature is not None and m.signature.regex:
        return m.signature.regex
    head, sep, rest = m.key.partition("\x1f")
    return rest if sep and rest else None


_WHAT = {
    "tool_error": "A call to the tool `{tool}` fails with the error below, and the agent has to work around it "
                  "(or gives up).",
    "hallucinated_tool": "The model calls `{tool}`, a tool it was never offered: the framework rejects the call. "
                         "The prompt or the task implies a capability the agent does not have.",
    "retry_loop": "After `{tool}` fails, the model calls it again and again instead of changing course.",
    "repeated_call": "The model calls `{tool}` with identical arguments several times in one run.",
    "invalid_arguments": "The model's arguments to `{tool}` do not fit the tool's schema.",
    "redundant_argument": "The model passes `{tool}` a parameter the tool does not declare.",
    "budget_exhaustion": "Runs end by exhausting the agent's budget ({key}) instead of with an answer.",
    "refusal": "The model refuses the request instead of doing what the tools allow.",
    "refusal_loop": "The model refuses repeatedly within one run.",
    "exception": "An exception ends or disrupts the run.",
    "guardrail": "A guardrail trips.",
    "handoff_loop": "Control bounces between agents without progress.",
}


def _what_happens(m: FailureMode) -> str:
    """One paragraph: the LLM engine's when it wrote one, else what the mode's category means here."""
    if m.description:
        return m.description
    head = m.key.partition("\x1f")[0]
    text = _WHAT.get(m.category, "").format(tool=head, key=m.key)
    text = text or f"{m.title}."
    if m.systemic_because:
        text += " Systemic: " + "; ".join(m.systemic_because) + "."
    return text


def _is_pytest_id(nodeid: str) -> bool:
    path = nodeid.partition("::")[0]
    return "::" in nodeid and path.endswith(".py") and not path.startswith(("/", "..")) and "\n" not in nodeid


def failing_tests(m: FailureMode, outcomes: Mapping[str, str] | None) -> list[str]:
    """The mode's evidenced tests that failed (all of them when every evidenced test of the mode failed)."""
    ids = sorted({e.test_nodeid for e in m.evidence if e.test_nodeid})
    if outcomes:
        return [n for n in ids if outcomes.get(n) in _FAILING]
    return ids if m.failing_test_count >= m.test_count else []


def reproducible(failing: Sequence[str]) -> list[str]:
    """The failing node ids a ``pytest`` command can run, at most ``MAX_REPRO_IDS``."""
    return [n for n in failing if _is_pytest_id(n)][:MAX_REPRO_IDS]


def reproduce_command(ids: Sequence[str]) -> str:
    """``pytest <ids>``, each id cleaned and shell-quoted: parametrized ids carry spaces, quotes and ``;``."""
    return "pytest " + " ".join(shlex.quote(clean(n)) for n in ids)


def snapshot_name(findings: Findings) -> str:
    """A content-derived file name: the same findings give the same snapshot, different ones a new file."""
    digest = hashlib.sha256(findings.model_dump_json(exclude={"gate"}).encode()).hexdigest()[:12]
    return f"findings-{digest}.json"


def _rel(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return str(path.resolve())


def _seen(e: Evidence) -> str:
    return clean(f"{e.test_nodeid or 'a run'} (trace {e.trace_id}, span {e.span_id})")


SpanRows = dict[tuple[str, str], dict[str, Any]]


def _evidence_spans(modes: Sequence[FailureMode], load_traces: TraceLoader | None) -> SpanRows:
    """The first few evidence spans of every mode, read in one call; nothing when reading fails."""
    if load_traces is None:
        return {}
    wanted: dict[str, set[str]] = {}
    for m in modes:
        for e in m.evidence[:MAX_CANDIDATES]:
            if e.span_id and (e.trace_id in wanted or len(wanted) < MAX_TRACES):
                wanted.setdefault(e.trace_id, set()).add(e.span_id)
    if not wanted:
        return {}
    try:
        loaded = load_traces(sorted(wanted))
    except Exception:  # noqa: BLE001 - an unreadable store costs the extra excerpts, never the brief
        return {}
    return {(t, r.get("span_id") or ""): r for t, rows in loaded.items() for r in rows
            if r.get("span_id") in wanted.get(t, ())}


def span_text(row: Mapping[str, Any]) -> str | None:
    """What one evidence span shows: its error (else the tool's result or the model's output), and for a
    tool call how it was called — the same shape as the detectors' examples."""
    text = (row.get("error_message") if row.get("is_error") else None) or row.get("tool_result") \
        or row.get("error_message") or row.get("output_text")
    if not text:
        return None
    tool = row.get("tool_name")
    return f"{text}\n\ncalled as: {tool}({row.get('tool_arguments') or ''})" if tool else str(text)


def _excerpts(m: FailureMode, spans: SpanRows) -> tuple[list[str], list[Evidence]]:
    """Up to ``MAX_EXCERPTS`` excerpts: the mode's example, then other evidence spans — first from tests
    not quoted yet with text not shown yet, then any new text, then any other test — redacted and capped.

    Returns the excerpts and, when every excerpt's span is known, the evidence each came from.
    """
    out: list[str] = []
    sources: list[Evidence] = []
    candidates = [(e, excerpt(t, EXCERPT_CHARS)) for e in m.evidence[:MAX_CANDIDATES]
                  if (row := spans.get((e.trace_id, e.span_id))) is not None and (t := span_text(row))]
    if m.example:
        first = excerpt(m.example, EXCERPT_CHARS)
        # the example was taken from the first evidence span that had one: the one whose text it is, if any
        source = next((e for e, t in candidates if t == first), m.evidence[0] if m.evidence else None)
        out.append(first)
        sources += [source] if source is not None else []
    for new_test, new_text in ((True, True), (False, True), (True, False)):
        for e, t in candidates:
            if len(out) >= MAX_EXCERPTS:
                break
            if e in sources or (new_text and t in out):
                continue
            if new_test and e.test_nodeid in {s.test_nodeid for s in sources}:
                continue
            out.append(t)
            sources.append(e)
    return out, sources if len(sources) == len(out) else []

def build_brief(
    findings: Findings,
    *,
    run_from: Path | None,
    baseline: Path | None,
    outcomes: Mapping[str, str] | None = None,
    load_traces: TraceLoader | None = None,
) -> Brief:
    """The brief's data: every verified systemic mode, most important first.

    ``load_traces`` reads the evidence traces, so each mode gets excerpts from several of its spans
    (None: the mode's one stored example only).
    """
    d = findings.dataset
    modes = sorted((m for m in findings.failure_modes if m.verified), key=mode_order)
    spans = _evidence_spans(modes, load_traces)
    base_arg = _rel(baseline, run_from) if baseline is not None else "<findings.json of this run>"
    # the verify run writes elsewhere, so running it never replaces this brief and its findings
    verify_dir = _rel(baseline.parent.parent / VERIFY_DIR, run_from) if baseline is not None else ".halo-verify"
    brief = Brief(run_from=str(run_from.resolve()) if run_from else None,
                  baseline=_rel(baseline, run_from) if baseline is not None else None)
    for m in modes:
        failing = failing_tests(m, outcomes)
        ids = reproducible(failing)
        reproduce = verify = note = None
        if ids:
            reproduce = reproduce_command(ids)
            verify = (f"pytest --halo --halo-dir {shlex.quote(verify_dir)} --halo-baseline {shlex.quote(base_arg)} "
                      f"--halo-fail-on regressed {reproduce.removeprefix('pytest ')}")
            if len(failing) > len(ids):
                note = f"{len(ids)} of the {len(failing)} failing tests"
        elif failing:
            note = "the failing runs are not pytest tests: reproduce them the way the traces were produced"
        else:
            note = "no failing test shows this mode: it is enriched or recurring in passing runs"
        evidence, sources = _excerpts(m, spans)
        seen_in = [_seen(e) for e in (sources if len(sources) == len(evidence) else m.evidence[:MAX_EXCERPTS])]
        brief.modes.append(BriefMode(
            id=m.id,
            title=clean(m.title),
            category=m.category,
            what_happens=clean(_what_happens(m)),
            pattern=clean(_pattern(m)) if _pattern(m) else None,
            runs=m.run_count,
            of_runs=d.runs,
            run_unit=d.run_unit,
            failing_test_count=m.failing_test_count,
            test_count=m.test_count,
            failing_tests=[clean(n) for n in failing],
            evidence=evidence,
            seen_in=seen_in,
            locations=[BriefLocation(path=clean(loc.path), line=loc.line, kind=loc.kind, why=clean(loc.why))
                       for loc in m.locations],
            suspected_change=clean(m.suspected_change) if m.suspected_change else None,
            suggested_fix=clean(m.suggested_fix) if m.suggested_fix else None,
            reproduce=reproduce,
            verify=verify,
            commands_note=note,
        ))
    return brief


def render_brief(brief: Brief) -> str:
    """``fix-brief.md``: Markdown a coding agent (or a person) reads top to bottom."""
    out = ["# Fix brief", "", md_text(brief.preamble), ""]
    if brief.run_from:
        out += [f"Run every command below from {md_code(brief.run_from)} (the pytest rootdir: node ids are "
                "relative to it).", ""]
    else:
        out += ["Run every command below from the pytest rootdir of the project that produced these traces "
                "(node ids are relative to it).", ""]
    if brief.baseline:
        out += [f"The verify commands gate against {md_code(brief.baseline)}, a snapshot of the findings this "
                "brief was written from; keep it until you are done.", ""]
    for i, m in enumerate(brief.modes, 1):
        out += [f"## {i}. {md_title(m.title)}", "", f"Mode {md_code(m.id)} · category {md_code(m.category)}", ""]
        out += [f"**What happens.** {md_title(m.what_happens)}", ""]
        if m.pattern:
            out += [f"Pattern ({md_code('<*>')} marks a part that varies): {md_code(m.pattern)}", ""]
        tests = ", ".join(md_code(t) for t in m.failing_tests[:MAX_REPRO_IDS])
        more = f" and {len(m.failing_tests) - MAX_REPRO_IDS} more" if len(m.failing_tests) > MAX_REPRO_IDS else ""
        out += [f"**How often.** In {m.runs} of {m.of_runs} {m.run_unit}; {m.failing_test_count} of the "
                f"{m.test_count} tests showing it failed" + (f": {tests}{more}." if tests else "."), ""]
        paired = len(m.seen_in) == len(m.evidence)
        if m.evidence:
            out += ["**Evidence.**", ""]
            for j, ev in enumerate(m.evidence):
                if paired:
                    out += [f"In {md_code(m.seen_in[j])}:", ""]
                out += [md_block(ev), ""]
        if m.seen_in and not paired:
            out += ["Seen in: " + "; ".join(md_code(s) for s in m.seen_in) + ".", ""]
        if m.locations:
            out += ["**Where in the code.**", ""]
            out += [f"- {md_code(f'{loc.path}:{loc.line}')} ({md_text(loc.kind)}) — {md_title(loc.why)}"
                    for loc in m.locations]
            out.append("")
        else:
            out += ["**Where in the code.** Not located: none of the names or texts the traces carry were "
                    "found in the project's source.", ""]
        if m.suspected_change:
            out += [f"**Suspected change.** {md_code(m.suspected_change)} (where the change under review most "
                    "likely caused it; checked to be in the repository, and on a changed line when a diff base "
                    "is known).", ""]
        if m.suggested_fix:
            out += [f"**Suggested fix.** {md_title(m.suggested_fix)}", ""]
        if m.reproduce:
            out += ["**Reproduce** (these tests fail now):", "", md_block(m.reproduce, "sh"), ""]
            out += ["**Verify** (passes once the mode is gone; fails while it persists or if a new mode appears):",
                    "", md_block(m.verify or "", "sh"), ""]
        if m.commands_note:
            out += [f"_{md_text(m.commands_note)}_", ""]
    if not brief.modes:
        out += ["No systemic failure modes: nothing to fix.", ""]
    return "\n".join(out)


def write_snapshot(findings: Findings, out_dir: Path) -> Path:
    """Write (once) the content-named snapshot the verify commands point at; keep the latest few."""
    folder = out_dir / SNAPSHOT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / snapshot_name(findings)
    if not path.exists():
        findings.write(path)
    old = sorted(folder.glob("findings-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in old[KEEP_SNAPSHOTS:]:
        if stale != path:
            stale.unlink(missing_ok=True)
    return path


class FixBrief:
    """The publisher: writes the brief only when the analysis found verified systemic modes.

    ``load_traces``: the evidence traces' spans (``engine.run`` hands it the one the HTML viewer gets).
    """

    name = BRIEF_MD

    def __init__(self, repo_root: Path | None = None, outcomes: Mapping[str, str] | None = None,
                 load_traces: TraceLoader | None = None) -> None:
        self.repo_root = Path(repo_root) if repo_root else None
        self.outcomes = dict(outcomes) if outcomes else None
        self.load_traces = load_traces

    def publish(self, findings: Findings, out_dir: Path) -> dict[str, Path]:
        for stale in (BRIEF_MD, BRIEF_JSON):
            (out_dir / stale).unlink(missing_ok=True)
        if not any(m.verified for m in findings.failure_modes):
            return {}
        snapshot = write_snapshot(findings, out_dir)
        brief = build_brief(findings, run_from=self.repo_root, baseline=snapshot, outcomes=self.outcomes,
                            load_traces=self.load_traces)
        md, js = out_dir / BRIEF_MD, out_dir / BRIEF_JSON
        atomic_write_text(md, render_brief(brief))
        atomic_write_text(js, brief.model_dump_json(indent=2) + "\n")
        return {BRIEF_MD: md, BRIEF_JSON: js}


def brief_json(brief: Brief) -> dict[str, Any]:
    return brief.model_dump(mode="json")
