"""``report.html``: one self-contained page (inline CSS, JS and SVG; no network) for failure modes and evidence traces.

Modes are listed by root cause (``engine.root_cause_groups``, as in ``report.md``): one group per
defect, its facets — each a mode with its own id, evidence and trace — inside it.

Trace text is untrusted. It is redacted and stripped of control characters (``engine.sanitize``),
embedded as JSON that cannot close its ``<script>`` element, and the page's script puts it in
the DOM only as text. A Content-Security-Policy allows just the page's one inline script and one
inline style sheet (each by hash), no style attributes and no network at all, so even a mistake
elsewhere could not run injected code, restyle the page or call out.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from engine.findings import FailureMode, Findings, Gate, GateEntry
from engine.findings_words import in_words, outcome_phrase
from engine.publish.brief import failing_tests, reproduce_command, reproducible
from engine.root_cause_groups import facet_label, groups
from engine.safe_io import atomic_write_text
from engine.sanitize import clean, excerpt

HTML_FILE = "report.html"
ASSETS = Path(__file__).with_name("html_assets")
MAX_TRACES = 200  # evidence traces embedded in the page
EVIDENCE_PER_MODE = 5
MAX_SPANS = 5000  # per embedded trace; the evidence span is always kept
TEXT_CAP = 4000
ATTR_CAP = 2000
MAX_MODES = 2000

# trace_ids -> {trace_id: [span rows]}; rows as ``engine.traces.rows.view_rows`` gives them
TraceLoader = Callable[[Sequence[str]], Mapping[str, list[dict[str, Any]]]]


def _baseline_prevalence(entry: GateEntry | None) -> float | None:
    if entry is None or not entry.baseline_total:
        return None
    return entry.baseline_runs / entry.baseline_total


def _span_row(s: Mapping[str, Any], depth: int) -> dict[str, Any]:
    attrs = {clean(k)[:200]: excerpt(clean(v), ATTR_CAP) for k, v in (s.get("attributes") or {}).items()}
    row = {
        "id": clean(s.get("span_id", "")), "name": excerpt(clean(s.get("name", "")), 300),
        "cat": s.get("category") if s.get("category") in ("llm", "tool", "agent") else "other",
        "start": float(s.get("start_ms", 0.0)), "dur": float(s.get("duration_ms", 0.0)),
        "err": bool(s.get("is_error")), "error": excerpt(clean(s.get("error_message") or ""), TEXT_CAP),
        "tool": clean(s.get("tool_name") or ""), "args": excerpt(clean(s.get("tool_arguments") or ""), TEXT_CAP),
        "result": excerpt(clean(s.get("tool_result") or ""), TEXT_CAP), "model": clean(s.get("model") or ""),
        "agent": clean(s.get("agent_name") or ""), "output": excerpt(clean(s.get("output_text") or ""), TEXT_CAP),
        "attrs": attrs, "depth": depth,
    }
    row["search"] = " ".join(str(v) for k, v in row.items() if isinstance(v, str)).lower()[:20_000]
    return row


def _trace_view(spans: list[dict[str, Any]], keep: set[str]) -> dict[str, Any]:
    """Spans in tree order (parent before children) with their depth, capped at ``MAX_SPANS`` keeping ``keep``."""
    by_parent: dict[str, list[dict[str, Any]]] = {}
    ids = {s.get("span_id") for s in spans}
    for s in sorted(spans, key=lambda s: s.get("start_ms", 0.0)):
        parent = s.get("parent_span_id") or ""
        by_parent.setdefault(parent if parent in ids else "", []).append(s)
    ordered: list[tuple[dict[str, Any], int]] = []
    stack = [(s, 0) for s in reversed(by_parent.get("", []))]
    seen: set[str] = set()
    while stack:
        s, depth = stack.pop()
        sid = s.get("span_id") or ""
        if sid in seen:
            continue
        seen.add(sid)
        ordered.append((s, depth))
        stack.extend((c, depth + 1) for c in reversed(by_parent.get(sid, [])))
    if len(ordered) > MAX_SPANS:
        kept = ordered[:MAX_SPANS]
        kept_ids = {p[0].get("span_id") for p in kept}
        kept += [p for p in ordered[MAX_SPANS:] if p[0].get("span_id") in keep and p[0].get("span_id") not in kept_ids]
        truncated = len(ordered) - len(kept)
        ordered = kept
    else:
        truncated = 0
    return {"spans": [_span_row(s, min(depth, 30)) for s, depth in ordered], "truncated": truncated}


def gate_badge(g: Gate) -> tuple[str, str]:
    """The headline's gate badge, (state, text): without a baseline nothing is compared, so unless
    ``fail_on`` is ``any`` the gate decided nothing and says so (never a green PASS over failing tests)."""
    if g.verdict == "fail":
        return "fail", f"gate: FAIL (fail-on {g.fail_on})"
    if not g.baseline and g.fail_on != "any":
        return "not-gated", "gate: not gated — no baseline to compare with"
    return "pass", f"gate: PASS (fail-on {g.fail_on})"


def _ref(group: int, k: int, size: int) -> str:
    """A mode's short label in the chart and matrix: its group's number, and a letter when the group has facets."""
    if size == 1:
        return str(group)
    return f"{group}{chr(ord('a') + k)}" if size <= 26 else f"{group}.{k + 1}"


def _group_row(n: int, members: Sequence[FailureMode], findings: Findings, status: Mapping[str, str]) -> dict[str, Any]:
    lead = members[0]
    widest = max(members, key=lambda m: (m.failing_test_count, m.run_count))
    return {
        "n": n, "lead": clean(lead.id), "title": excerpt(clean(lead.title), 300), "members": [clean(m.id) for m in members],
        "facets": [clean(facet_label(c)) for c in dict.fromkeys(m.category for m in members)],
        "words": in_words(widest, findings.dataset), "verified": lead.verified,
        "statuses": sorted({status[m.id] for m in members if m.id in status}),
    }


def build_payload(findings: Findings, outcomes: Mapping[str, str], load_traces: TraceLoader | None) -> dict[str, Any]:
    """Everything the page shows, cleaned: the findings in words by root cause, the tests, and the evidence traces."""
    d, g = findings.dataset, findings.gate
    status = findings.gate.status_by_id()
    entries = {e.id: e for name in ("new", "regressed", "persisting", "emerging", "resolved") for e in getattr(g, name)}
    shown = findings.failure_modes[:MAX_MODES]
    roots = groups([m for m in shown if m.verified]) + groups([m for m in shown if not m.verified])
    modes: list[dict[str, Any]] = []
    group_rows: list[dict[str, Any]] = []
    wanted: dict[str, set[str]] = {}
    for n, members in enumerate(roots, 1):
        group_rows.append(_group_row(n, members, findings, status))
        for k, m in enumerate(members):
            row = _mode_row(m, findings, status.get(m.id, "systemic" if not g.baseline else "persisting"),
                            entries.get(m.id), outcomes)
            modes.append({**row, "group": n, "ref": _ref(n, k, len(members)), "facet": clean(facet_label(m.category))})
            for e in m.evidence[:EVIDENCE_PER_MODE]:
                if len(wanted) < MAX_TRACES or e.trace_id in wanted:
                    wanted.setdefault(e.trace_id, set()).add(e.span_id)
    for gone in g.resolved:
        n = len(group_rows) + 1
        gone_id, title = clean(gone.id), excerpt(clean(gone.title), 300)
        words = f"{gone.baseline_runs} → {gone.candidate_runs} runs"
        group_rows.append({"n": n, "lead": gone_id, "title": title, "members": [gone_id], "facets": ["resolved"],
                           "words": words, "verified": True, "statuses": ["resolved"]})
        modes.append({"id": gone_id, "title": title, "category": "resolved",
                      "status": "resolved", "source": "baseline", "prevalence": gone.candidate_runs / max(gone.candidate_total, 1),
                      "baseline_prevalence": _baseline_prevalence(gone), "run_count": gone.candidate_runs,
                      "words": words, "words_long": "No longer systemic.",
                      "evidence": [], "tests": [], "tests_complete": True, "locations": [], "verified": True,
                      "description": None, "suggested_fix": None, "reproduce": None, "example": None,
                      "group": n, "ref": str(n), "facet": "resolved"})
    traces: dict[str, Any] = {}
    if load_traces is not None and wanted:
        test_of = {e.trace_id: e.test_nodeid for m in findings.failure_modes for e in m.evidence}
        for trace_id, spans in load_traces(sorted(wanted)).items():
            view = _trace_view(spans, wanted.get(trace_id, set()))
            view["test"] = clean(test_of.get(trace_id) or "")
            traces[clean(trace_id)] = view
    tests = sorted(((clean(n), o) for n, o in outcomes.items()), key=lambda t: (t[1] not in ("failed", "error"), t[0]))
    badge_state, badge_text = gate_badge(g)
    return {
        "headline": {"tests": d.tests, "failing": d.failing_tests, "passing": d.passing_tests, "runs": d.runs,
                     "run_unit": d.run_unit, "spans": d.spans, "traces": d.traces, "phrase": outcome_phrase(d)},
        "gate": {"verdict": g.verdict, "fail_on": g.fail_on, "baseline": clean(Path(g.baseline).name) if g.baseline else None,
                 "badge": badge_state, "badge_text": badge_text,
                 "counts": {k: len(getattr(g, k)) for k in ("new", "regressed", "emerging", "persisting", "resolved", "not_rerun")},
                 "notes": [clean(n) for n in g.notes]},
        "llm": findings.llm.model_dump() if findings.llm else None,
        "groups": group_rows,
        "modes": modes,
        "tests": [{"nodeid": n, "outcome": o} for n, o in tests],
        "traces": traces,
    }


def _mode_row(m: FailureMode, findings: Findings, status: str, entry: GateEntry | None,
              outcomes: Mapping[str, str]) -> dict[str, Any]:
    tests = sorted({clean(e.test_nodeid) for e in m.evidence if e.test_nodeid})
    repro = reproducible(failing_tests(m, outcomes))
    return {
        "id": clean(m.id), "title": excerpt(clean(m.title), 300), "category": clean(m.category), "status": status,
        "source": m.source, "run_count": m.run_count, "prevalence": m.prevalence,
        "baseline_prevalence": _baseline_prevalence(entry), "test_count": m.test_count,
        "failing_test_count": m.failing_test_count, "words": in_words(m, findings.dataset),
        "words_long": f"Seen {in_words(m, findings.dataset)} ({m.prevalence:.1%} of runs).",
        "description": excerpt(clean(m.description), TEXT_CAP) if m.description else None,
        "suggested_fix": excerpt(clean(m.suggested_fix), TEXT_CAP) if m.suggested_fix else None,
        "example": excerpt(clean(m.example), TEXT_CAP) if m.example else None,
        "locations": [{"path": clean(loc.path), "line": loc.line, "why": clean(loc.why)} for loc in m.locations[:10]],
        "reproduce": reproduce_command(repro) if repro else None,
        "evidence": [{"trace_id": clean(e.trace_id), "span_id": clean(e.span_id), "test": clean(e.test_nodeid or "")}
                     for e in m.evidence],
        "tests": tests, "tests_complete": len(tests) >= m.test_count, "verified": m.verified,
    }


def _script_json(payload: Mapping[str, Any]) -> str:
    """JSON that an HTML parser cannot end early: ``<``, ``>`` and ``&`` and the JS line separators escaped."""
    text = orjson.dumps(payload).decode("utf-8")
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def render_html(payload: Mapping[str, Any]) -> str:
    """The page; its only inline script and style sheet are allowed by hash (the script styles through the CSSOM)."""
    script = (ASSETS / "report.js").read_text(encoding="utf-8")
    style = (ASSETS / "report.css").read_text(encoding="utf-8")
    csp = (f"default-src 'none'; script-src '{_sha256(script)}'; style-src '{_sha256(style)}'; img-src data:; "
           "connect-src 'none'; form-action 'none'; base-uri 'none'")
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        f"<title>pytest-halo report</title><style>{style}</style></head><body>"
        "<header id=\"headline\"></header><main><div id=\"left\"><div id=\"filters\" class=\"controls\"></div>"
        "<div id=\"modes\"></div></div><div id=\"right\"></div></main>"
        f"<script type=\"application/json\" id=\"halo-data\">{_script_json(payload)}</script>"
        f"<script>{script}</script></body></html>\n"
    )


class HtmlReport:
    """The ``report.html`` publisher. ``load_traces`` gives the evidence traces' spans (None: no viewer data)."""

    name = HTML_FILE

    def __init__(self, outcomes: Mapping[str, str] | None = None, load_traces: TraceLoader | None = None) -> None:
        self.outcomes = dict(outcomes or {})
        self.load_traces = load_traces

    def publish(self, findings: Findings, out_dir: Path) -> dict[str, Path]:
        path = out_dir / HTML_FILE
        atomic_write_text(path, render_html(build_payload(findings, self.outcomes, self.load_traces)))
        return {HTML_FILE: path}
