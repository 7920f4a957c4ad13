"""``report.html`` in a real headless Chromium (Debian's, driven by Playwright): it loads offline with no errors,
its numbers match the findings, modes are grouped by root cause as in ``report.md``, a mode opens its evidence
trace at the evidence span, hostile trace text runs nothing, and a thousand modes and a 5,000-span trace stay lazy.

``HALO_DOCS_SCREENSHOT=1`` also saves the example's screenshot as ``docs/report-html.png`` (the README's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.findings import Evidence, FailureMode, Findings, Gate
from engine.publish.html import HtmlReport, gate_badge
from engine.root_cause_groups import groups
from engine.run import run_analysis

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "support_agent"
CHROMIUM = Path(os.environ.get("HALO_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("HALO_TEST_ARTIFACTS", REPO / "benchmarks" / "out"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed (the test extra has it)")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


class Page:
    """A page with its console errors, network requests and dialogs recorded."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.set_default_timeout(90_000)  # Playwright's 30 s is tight for Chromium on 2 busy cores
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']")

    def in_viewport(self, selector: str) -> bool:
        return bool(self.page.eval_on_selector(selector, """n => { const r = n.getBoundingClientRect();
            const w = n.closest('#waterfall').getBoundingClientRect();
            return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight && r.top >= w.top && r.bottom <= w.bottom; }"""))


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example run as a user runs it; returns its ``.halo`` folder."""
    work = tmp_path_factory.mktemp("example")
    shutil.copytree(EXAMPLE, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".halo", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HALO"))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--halo", "-q", "-p", "no:cacheprovider"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert (work / ".halo" / "report.html").exists(), proc.stdout[-3000:] + proc.stderr[-2000:]
    return work / ".halo"


def test_example_page_loads_offline_and_its_numbers_match_the_findings(browser: Any, example: Path) -> None:
    html = example / "report.html"
    assert html.stat().st_size < 2_000_000
    page = Page(browser, html)
    findings = json.loads((example / "findings.json").read_text())
    roots = groups(Findings.read(example / "findings.json").failure_modes)
    tests = {json.loads(line)["nodeid"]: json.loads(line)["outcome"] for line in (example / "tests.jsonl").open()}
    p = page.page
    assert p.text_content("#tests-line") == f"{findings['dataset']['failing_tests']} of {len(tests)} tests failed"
    # no baseline: the gate compared nothing, so the badge says so in a neutral colour, never a green PASS
    assert findings["gate"]["baseline"] is None and findings["gate"]["fail_on"] == "new"
    assert p.text_content("#gate-badge") == "gate: not gated — no baseline to compare with"
    colours = p.evaluate("""() => { const c = (sel) => getComputedStyle(document.querySelector(sel)).color;
        const probe = document.createElement('span'); probe.className = 'pass'; document.body.appendChild(probe);
        const out = [c('#gate-badge'), getComputedStyle(probe).color, c('#changes')]; probe.remove(); return out; }""")
    assert colours[0] != colours[1] and colours[0] == colours[2]  # muted, not the pass green
    bars = p.eval_on_selector_all("#chart g.bar", "gs => gs.map(g => [g.dataset.id, Number(g.dataset.now)])")
    assert bars == [[m.id, m.prevalence] for members in roots for m in members]  # in root-cause order
    cells = p.eval_on_selector_all("#matrix td[data-mode]", "tds => tds.map(td => [td.parentElement.dataset.test, "
                                   "td.dataset.mode, td.className])")
    expected = {(e["test_nodeid"], m["id"]) for m in findings["failure_modes"] for e in m["evidence"]}
    assert {(t, m) for t, m, _ in cells} == expected
    for test, _, cls in cells:
        assert cls == ("hit-failed" if tests[test] == "failed" else "hit-passed")
    assert len(p.query_selector_all("#matrix tr[data-test]")) == len(tests) == 26
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    p.screenshot(path=str(ARTIFACTS / "report-html-overview.png"))
    if os.environ.get("HALO_DOCS_SCREENSHOT") == "1":
        p.screenshot(path=str(REPO / "docs" / "report-html.png"))
    assert page.errors == [] and page.requests == [page.url]


def test_example_modes_are_grouped_by_root_cause_like_report_md(browser: Any, example: Path) -> None:
    """One box per root cause (the example's four planted defects), its modes inside lead first; a facet's own
    card still opens its own evidence trace, and the mode's page names its siblings."""
    roots = groups(Findings.read(example / "findings.json").failure_modes)
    assert len(roots) == 4 and sorted(len(g) for g in roots) == [1, 1, 1, 4]
    assert "## 4. " in (example / "report.md").read_text() and "## 5. " not in (example / "report.md").read_text()
    page = Page(browser, example / "report.html")
    p = page.page
    boxes = p.eval_on_selector_all("#modes .cause", "cs => cs.map(c => [...c.querySelectorAll('.mode')].map(m => m.dataset.id))")
    assert boxes == [[m.id for m in members] for members in roots]
    assert p.text_content("#cause-count") == "in 4 of 4 root causes"
    assert p.text_content("#mode-count") == "7 of 7 failure modes"
    big = next(members for members in roots if len(members) > 1)
    head = p.text_content(f".cause[data-lead='{big[0].id}'] .cause-head")
    assert big[0].title in head and "4 facets: tool error, retry loop" in head
    headers = p.eval_on_selector_all("#matrix th", "ths => ths.slice(1).map(th => th.textContent)")
    n = roots.index(big) + 1
    assert [h for h in headers if h.startswith(str(n))] == [f"{n}{c}" for c in "abcd"]  # the matrix's columns too
    loop = next(m for m in big if m.category == "retry_loop")
    p.click(f".mode[data-id='{loop.id}']")
    p.wait_for_selector("#waterfall .row.evidence")
    assert p.get_attribute("#waterfall", "data-trace") == loop.evidence[0].trace_id
    assert p.get_attribute("#waterfall .row.evidence", "data-span") == loop.evidence[0].span_id
    assert page.in_viewport("#waterfall .row.evidence")
    assert p.text_content("#root-cause h3") == f"Root cause {roots.index(big) + 1}: {big[0].title}"
    siblings = p.eval_on_selector_all("#root-cause .facet-link", "bs => bs.map(b => b.dataset.mode)")
    assert siblings == [m.id for m in big if m.id != loop.id]
    p.click(f"#root-cause .facet-link[data-mode='{big[0].id}']")
    p.wait_for_function("t => document.getElementById('mode-title').textContent === t", arg=big[0].title)
    assert big[0].id in p.url
    p.select_option("#category", "retry_loop")  # a filter keeps a mode inside its root cause
    assert p.eval_on_selector_all("#modes .cause", "cs => cs.map(c => c.dataset.lead)") == [big[0].id]
    assert p.text_content("#cause-count") == "in 1 of 4 root causes"
    assert page.errors == [] and page.requests == [page.url]


def test_gate_badge_never_says_pass_for_a_gate_that_compared_nothing() -> None:
    assert gate_badge(Gate(fail_on="new")) == ("not-gated", "gate: not gated — no baseline to compare with")
    assert gate_badge(Gate(fail_on="regressed"))[0] == "not-gated"
    assert gate_badge(Gate(fail_on="any")) == ("pass", "gate: PASS (fail-on any)")  # any mode would have failed it
    assert gate_badge(Gate(fail_on="any", verdict="fail")) == ("fail", "gate: FAIL (fail-on any)")
    assert gate_badge(Gate(baseline="b.json", fail_on="new")) == ("pass", "gate: PASS (fail-on new)")
    assert gate_badge(Gate(fail_on="new", verdict="fail")) == ("fail", "gate: FAIL (fail-on new)")  # fails closed


def test_clicking_a_mode_opens_its_evidence_trace_at_the_evidence_span(browser: Any, example: Path) -> None:
    page = Page(browser, example / "report.html")
    findings = json.loads((example / "findings.json").read_text())
    mode = next(m for m in findings["failure_modes"] if "lookup_order" in m["title"])
    page.page.click(f".mode[data-id='{mode['id']}']")
    page.page.wait_for_selector("#waterfall .row.evidence")
    first = mode["evidence"][0]
    assert page.page.get_attribute("#waterfall", "data-trace") == first["trace_id"]
    assert page.page.get_attribute("#waterfall .row.evidence", "data-span") == first["span_id"]
    assert page.in_viewport("#waterfall .row.evidence")
    assert "unsupported order id format" in page.page.text_content("#span-detail")
    assert f"mode={mode['id']}" in page.page.url
    page.page.keyboard.press("j")  # keyboard: next mode
    page.page.wait_for_function(f"!location.hash.includes('{mode['id']}')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.page.screenshot(path=str(ARTIFACTS / "report-html-mode.png"))
    assert page.errors == [] and page.requests == [page.url]


HOSTILE = [
    "<script>window.__pwned = 1</script>",
    "<img src=x onerror=\"window.__pwned = 2; alert(2)\">",
    "[click](javascript:alert(3)) <a href=\"javascript:window.__pwned=3\">x</a>",
    "</script><script>window.__pwned = 4</script>",
    "\u2028</script\u2029>\x1b[2J\x07 @octocat sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ123456",
]


def _span(trace: str, span: str, parent: str, name: str, attrs: dict[str, Any], error: str = "") -> dict[str, Any]:
    return {"trace_id": trace, "span_id": span, "parent_span_id": parent, "trace_state": "", "name": name,
            "kind": "SPAN_KIND_INTERNAL", "start_time": "2026-01-01T00:00:00.000000000Z",
            "end_time": "2026-01-01T00:00:01.000000000Z",
            "status": {"code": "STATUS_CODE_ERROR" if error else "STATUS_CODE_UNSET", "message": error},
            "resource": {"attributes": {}}, "scope": {"name": "t", "version": ""}, "attributes": attrs}


def test_hostile_trace_text_executes_nothing_and_secrets_stay_out(browser: Any, tmp_path: Path) -> None:
    lines = []
    for i in range(4):
        trace = f"{i + 1:032x}"
        lines.append(_span(trace, f"{i + 1:016x}", "", "agent <b>run</b>", {"openinference.span.kind": "AGENT"}))
        for j, text in enumerate(HOSTILE):
            lines.append(_span(trace, f"{i + 1:08x}{j + 1:08x}", f"{i + 1:016x}", "tool " + text,
                               {"openinference.span.kind": "TOOL", "tool.name": "lookup<script>",
                                "input.value": text, "output.value": "Error: " + text}, error=text))
    src = tmp_path / "hostile.jsonl"
    src.write_text("".join(json.dumps(s) + "\n" for s in lines))
    out = run_analysis([src], tmp_path / "out")
    assert out.findings.failure_modes, "the hostile tool errors must form a mode so the viewer shows them"
    html = (tmp_path / "out" / "report.html").read_text()
    assert "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ123456" not in html and "\x1b" not in html and "\x07" not in html
    csp = html.split('http-equiv="Content-Security-Policy" content="', 1)[1].split('"', 1)[0]
    assert "unsafe-inline" not in csp and csp.count("'sha256-") == 2 and "default-src 'none'" in csp
    page = Page(browser, tmp_path / "out" / "report.html")
    shown = []
    for m in out.findings.failure_modes:
        page.page.goto(f"{page.url}#mode={m.id}")
        page.page.wait_for_selector("#waterfall .row")
        for row in range(len(HOSTILE) + 1):
            page.page.click(f"#waterfall .row >> nth={row}")
            shown.append(page.page.text_content("#right"))
    assert page.page.evaluate("window.__pwned") is None
    assert page.dialogs == []
    assert page.page.query_selector_all("a[href], img, iframe, object, embed") == []
    seen = "\n".join(shown)
    for text in ("<script>window.__pwned = 1</script>", "<img src=x onerror=", "javascript:window.__pwned=3"):
        assert text in seen  # shown as text, never parsed
    assert all(r == page.url or r.startswith(page.url + "#") for r in page.requests)


def test_a_thousand_modes_and_a_5000_span_trace_render_lazily(browser: Any, tmp_path: Path) -> None:
    trace = "f" * 32
    spans = [{"span_id": f"{i:016x}", "parent_span_id": "" if i == 0 else f"{0:016x}", "name": f"step {i}",
              "category": "tool" if i % 3 else "llm", "start_ms": float(i), "duration_ms": 1.0,
              "is_error": i == 4321, "error_message": "boom" if i == 4321 else None, "attributes": {"i": str(i)}}
             for i in range(5000)]
    modes = [FailureMode(id=f"fm-{i:012x}", title=f"mode {i}", category=("tool_error", "loop")[i % 2], detector="t",
                         key=str(i), run_count=2, prevalence=0.01,
                         evidence=[Evidence(trace_id=trace, span_id=f"{4321:016x}", test_nodeid="t.py::x")])
             for i in range(1000)]
    findings = Findings(failure_modes=modes)
    HtmlReport({"t.py::x": "failed"}, lambda ids: {trace: spans}).publish(findings, tmp_path)
    page = Page(browser, tmp_path / "report.html")
    p = page.page
    assert p.text_content("#mode-count") == "1000 of 1000 failure modes"
    assert len(p.query_selector_all(".mode")) == 200  # a chunk at a time
    p.click("button.more")
    assert len(p.query_selector_all(".mode")) == 400
    p.select_option("#category", "loop")
    assert p.text_content("#mode-count") == "500 of 1000 failure modes"
    p.goto(f"{page.url}#mode=fm-{999:012x}")
    p.wait_for_selector("#waterfall .row.evidence")
    assert p.get_attribute("#waterfall", "data-spans") == "5000"
    assert len(p.query_selector_all("#waterfall .row")) < 100  # only the visible window is in the DOM
    assert p.get_attribute("#waterfall .row.evidence", "data-span") == f"{4321:016x}"
    assert page.in_viewport("#waterfall .row.evidence")
    assert page.errors == []


def test_halo_report_renders_the_page_again_from_findings(browser: Any, example: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "engine", "report", str(example / "findings.json"), "--html",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    page = Page(browser, tmp_path / "report.html")
    findings = json.loads((example / "findings.json").read_text())
    first = findings["failure_modes"][0]
    page.page.goto(f"{page.url}#mode={first['id']}")
    page.page.wait_for_selector("#waterfall .row.evidence")  # the traces came from dataset.files
    assert (tmp_path / "report.md").read_text().startswith("# pytest-halo")
    bad = subprocess.run([sys.executable, "-m", "engine", "report", str(example / "tests.jsonl")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_baseline_bars_and_the_new_filter_on_real_tau_bench_runs(browser: Any, corpora: Path, tmp_path: Path) -> None:
    records = json.loads((corpora / "tau-bench-airline" / "gpt-4o-airline.json").read_text())
    base = [r for r in records if r["trial"] in (0, 1)]
    cand = [r for r in records if r["trial"] in (2, 3)]
    planted = 0
    for rec in sorted(cand, key=lambda r: (r["task_id"], r["trial"])):  # a third of the candidate runs
        msg = next((m for m in rec["traj"] if m.get("role") == "tool" and m.get("name") == "book_reservation"), None)
        if msg is not None and planted < len(cand) // 3:
            msg["content"] = "Error: payment gateway timeout after 30s"
            planted += 1
    (tmp_path / "base-airline.json").write_text(json.dumps(base))
    (tmp_path / "cand-airline.json").write_text(json.dumps(cand))
    baseline = tmp_path / "baseline.json"
    run_analysis([tmp_path / "base-airline.json"], tmp_path / "b", baseline=baseline, update_baseline=True)
    outcome = run_analysis([tmp_path / "cand-airline.json"], tmp_path / "c", baseline=baseline)
    gate = outcome.findings.gate
    assert len(gate.new) == 1 and gate.persisting
    page = Page(browser, tmp_path / "c" / "report.html")
    p = page.page
    assert p.text_content("#gate-badge") == "gate: FAIL (fail-on new)"
    assert "1 new" in p.text_content("#changes")
    bars = {b[0]: b[1] for b in p.eval_on_selector_all("#chart g.bar", "gs => gs.map(g => [g.dataset.id, g.dataset.base])")}
    for e in gate.persisting:
        if e.id in bars:
            assert float(bars[e.id]) == pytest.approx(e.baseline_runs / e.baseline_total)
    assert float(bars[gate.new[0].id]) == 0.0  # absent from the baseline: 0 of its runs
    p.select_option("#status", "new")
    assert p.eval_on_selector_all(".mode", "ms => ms.map(m => m.dataset.id)") == [gate.new[0].id]
    assert page.errors == []


def test_reproduce_command_quotes_node_ids_like_the_fix_brief() -> None:
    """The page's reproduce command is the brief's: shell-quoted ids, only ids pytest can run."""
    import shlex

    from engine.findings import DatasetSummary
    from engine.publish.html import build_payload

    weird = "tests/test_a.py::test_x[a b;touch pwned]"
    ids = [weird, "tests/test_a.py::test_two", "not-a-pytest-run-7"]
    mode = FailureMode(id="fm-000000000001", title="boom", category="tool_error", detector="tool_error", key="k",
                       run_count=3, test_count=3, failing_test_count=3, prevalence=0.5,
                       evidence=[Evidence(trace_id=f"{i:032x}", span_id=f"{i:016x}", test_nodeid=n)
                                 for i, n in enumerate(ids, 1)])
    findings = Findings(failure_modes=[mode], dataset=DatasetSummary(runs=6, tests=6, failing_tests=3, run_unit="tests"))
    payload = build_payload(findings, {n: "failed" for n in ids}, None)
    assert shlex.split(payload["modes"][0]["reproduce"]) == ["pytest", "tests/test_a.py::test_two", weird]


def test_payload_groups_modes_by_root_cause_with_unverified_and_resolved_apart() -> None:
    """Lead first then facets, largest group first (``engine.root_cause_groups``); an unverified LLM pattern is
    never inside a verified cause; a resolved mode is a group of its own; every mode knows its group and label."""
    from engine.findings import DatasetSummary, GateEntry
    from engine.publish.html import build_payload

    def mode(i: int, category: str, root: str, failing: int, verified: bool = True) -> FailureMode:
        return FailureMode(id=f"fm-{i:012x}", title=f"mode {i}", category=category, detector="t", key=str(i),
                           run_count=failing, test_count=failing, failing_test_count=failing, prevalence=0.1,
                           root_cause=root, verified=verified)

    lead = mode(1, "tool_error", f"fm-{1:012x}", 3)
    modes = [mode(2, "retry_loop", lead.id, 3), mode(3, "refusal", f"fm-{3:012x}", 4), lead,
             mode(4, "budget_exhaustion", lead.id, 3), mode(5, "loop", f"fm-{5:012x}", 9, verified=False)]
    gone = GateEntry(id="fm-0000000000ff", title="old <b>mode</b>", baseline_runs=4, baseline_total=10, candidate_total=10)
    unrun = GateEntry(id="fm-0000000000ee", title="not re-run", baseline_runs=4, baseline_total=10, candidate_total=10)
    findings = Findings(failure_modes=modes, dataset=DatasetSummary(runs=10, tests=10, failing_tests=5, run_unit="tests"),
                        gate=Gate(baseline="b.json", resolved=[gone], not_rerun=[unrun]))
    payload = build_payload(findings, {}, None)
    assert payload["gate"]["counts"]["resolved"] == 1 and payload["gate"]["counts"]["not_rerun"] == 1
    assert [(g["n"], g["members"], g["verified"]) for g in payload["groups"]] == [
        (1, [f"fm-{3:012x}"], True),
        (2, [lead.id, f"fm-{2:012x}", f"fm-{4:012x}"], True),
        (3, [f"fm-{5:012x}"], False),
        (4, ["fm-0000000000ff"], True)]
    assert payload["groups"][1]["facets"] == ["tool error", "retry loop", "budget exhausted"]
    assert [(m["id"][-1], m["group"], m["ref"]) for m in payload["modes"]] == [
        ("3", 1, "1"), ("1", 2, "2a"), ("2", 2, "2b"), ("4", 2, "2c"), ("5", 3, "3"), ("f", 4, "4")]
    assert payload["modes"][-1]["status"] == "resolved" and payload["groups"][-1]["statuses"] == ["resolved"]
    assert payload["gate"]["badge"] == "pass"
