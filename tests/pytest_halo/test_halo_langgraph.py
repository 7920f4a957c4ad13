"""LangGraph end to end: ``StateGraph`` + ``ToolNode`` on ``ChatOpenAI`` over a loopback server, spans from
OpenInference's ``LangChainInstrumentor``; planted tool error, hallucinated tool and recursion limit;
serial (the app's own TracerProvider) and ``-n 2`` (the global one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph.prebuilt")
pytest.importorskip("langchain_openai")
pytest.importorskip("openinference.instrumentation.langchain")

from langgraph_project import CONFTEST, HALLUCINATED, PASSING, RECURSION, TESTS, TOOL_ERROR  # noqa: E402

SCOPE = "openinference.instrumentation.langchain"


@pytest.fixture
def langgraph_suite(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_travel=TESTS)


def _by_test(run: Any, suffix: str) -> tuple[list[dict[str, Any]], Any]:
    spans = run.spans_of("::" + suffix)
    return spans, run.categories(spans)


def _check_capture(run: Any) -> None:
    assert run.ret == 1, run.output()  # the tests' own failures
    run.result.assert_outcomes(passed=3, failed=7)
    assert len(run.tests) == 10
    for nodeid, rec in run.tests.items():
        test = nodeid.split("::")[1]
        assert rec["outcome"] == ("passed" if test in PASSING else "failed"), nodeid
        spans = run.spans_of(nodeid)
        assert spans and rec["spans"] == len(spans), nodeid
        assert {s["attributes"]["halo.test.outcome"] for s in spans} == {rec["outcome"]}
        assert {s["scope"]["name"] for s in spans} == {SCOPE}
        assert len(rec["trace_ids"]) == 1 == len({s["trace_id"] for s in spans})  # one graph.invoke, one trace
        roots = [s for s in spans if not s["parent_span_id"]]
        assert [r["name"] for r in roots] == ["travel_assistant"] and run.categories(roots) == {"chain": 1}
        ids = {s["span_id"] for s in spans}
        assert all(s["parent_span_id"] in ids for s in spans if s["parent_span_id"])

    for test in ("test_weather[Paris]", "test_weather[Rome]", "test_time"):
        spans, cats = _by_test(run, test)
        assert cats["llm"] == 2 and cats["tool"] == 1, (test, cats)
        assert not [s for s in spans if s["status"]["code"] == "STATUS_CODE_ERROR"]

    for test in TOOL_ERROR:  # invoke, ainvoke, and two parallel calls on ToolNode's thread pool
        spans, cats = _by_test(run, test)
        tools = {s["attributes"]["input.value"]: s for s in spans if run.categories([s])["tool"]}
        assert cats["llm"] == 2 and set(tools) == ({"Paris", "Atlantis"} if "compare" in test else {"Atlantis"})
        tool = tools["Atlantis"]
        a = tool["attributes"]
        assert (tool["name"], a["tool.name"], tool["status"]["code"]) == ("get_weather", "get_weather",
                                                                           "STATUS_CODE_ERROR")
        assert (a["exception.type"], a["exception.message"]) == (
            "ConnectionError", "weather service has no station in Atlantis")
        assert all(s["status"]["code"] != "STATUS_CODE_ERROR" for s in tools.values() if s is not tool)
        last = max((s for s in spans if run.categories([s])["llm"]), key=lambda s: s["start_time"])["attributes"]
        handed = [v for k, v in last.items() if k.startswith("llm.input_messages.") and k.endswith(".content")]
        assert any(v.startswith("Error: ConnectionError('weather service has no station") for v in handed), handed
    for test in HALLUCINATED:
        spans, cats = _by_test(run, test)
        assert cats["llm"] == 2 and cats["tool"] == 0, (test, cats)  # the unknown tool never ran
        llm = sorted((s for s in spans if run.categories([s])["llm"]), key=lambda s: s["start_time"])
        first, last = llm[0]["attributes"], llm[1]["attributes"]
        assert first["llm.model_name"] == "fake-gpt" and first["llm.token_count.prompt"] == 31
        assert first["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "book_flight"
        offered = {json.loads(v)["function"]["name"] for k, v in first.items() if k.startswith("llm.tools.")}
        assert offered == {"get_weather", "get_time"}
        assert last["llm.input_messages.2.message.content"].startswith("Error: book_flight is not a valid tool")

    for test in RECURSION:
        spans, cats = _by_test(run, test)
        assert cats["llm"] == 3 and cats["tool"] == 3, (test, cats)  # recursion_limit=6 steps
        errors = [s for s in spans if s["status"]["code"] == "STATUS_CODE_ERROR"]
        assert [s["name"] for s in errors] == ["travel_assistant"]
        assert errors[0]["attributes"]["exception.type"] == "langgraph.errors.GraphRecursionError"
        assert run.tests[next(k for k in run.tests if k.endswith(test))]["reason"].startswith("langgraph.errors")


def _findings_problems(run: Any) -> tuple[dict[str, Any], list[str]]:
    """findings.json against the planted modes: every mismatch, not just the first (one run, many modes)."""
    findings = json.loads((run.dir / "findings.json").read_text())
    assert findings["dataset"]["tests"] == 10 and findings["dataset"]["failing_tests"] == 7
    modes = {(m["detector"], m["key"].split("\x1f")[0]): m for m in findings["failure_modes"]}
    problems: list[str] = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    def tests_of(mode: dict[str, Any]) -> set[str]:
        return {e["test_nodeid"].split("::")[1] for e in mode["evidence"]}

    def counts(mode: dict[str, Any]) -> tuple[int, int]:
        return mode["test_count"], mode["failing_test_count"]

    planted = {("tool_error", "get_weather"): TOOL_ERROR, ("hallucinated_tool", "book_flight"): HALLUCINATED,
               ("budget_exhausted", "recursion limit"): RECURSION,
               ("repeated_call", "get_time"): RECURSION}  # the loop that burns the budget
    for key, tests in planted.items():
        mode = modes.get(key)
        expect(mode is not None, f"no {key} mode")
        if mode:
            expect(counts(mode) == (len(tests), len(tests)), f"{key}: test/failing counts {counts(mode)}")
            expect(tests_of(mode) == set(tests), f"{key}: evidence from {sorted(tests_of(mode))}")
    if ("tool_error", "get_weather") in modes:  # the error's words, not only its type, name the mode
        title = modes[("tool_error", "get_weather")]["title"]
        expect("no station in" in title, f"tool error title loses the message: {title!r}")
    if ("hallucinated_tool", "book_flight") in modes:
        expect("`book_flight`" in modes[("hallucinated_tool", "book_flight")]["title"], "hallucinated tool unnamed")
    if ("budget_exhausted", "recursion limit") in modes:
        expect(modes[("budget_exhausted", "recursion limit")]["category"] == "budget_exhaustion", "budget category")
    extra = sorted(set(modes) - set(planted))  # e.g. ToolNode's "not a valid tool" read as a book_flight tool error
    expect(not extra, f"modes nobody planted: {[(k, modes[k]['title']) for k in extra]}")
    expect(not any(set(PASSING) & tests_of(m) for m in modes.values()), "a mode cites a passing test")
    notes = "\n".join(findings["notes"])
    expect("detector broken_user_detector failed and was switched off: ZeroDivisionError" in notes,
           f"broken user detector not noted: {notes!r}")
    return findings, problems


def _app_exporter_spans(pytester: pytest.Pytester) -> int:
    files = list(pytester.path.glob("app-exporter-*.json"))
    total = sum(json.loads(p.read_text())["spans"] for p in files)
    for p in files:
        p.unlink()
    return total


# In a subprocess: pytester drops modules first imported during its test, and numpy cannot be imported twice.
OFFLINE = """
import sys
from pathlib import Path
from engine.analysis import source
from engine.run import run_analysis
traces, out = Path(sys.argv[1]), Path(sys.argv[2])
for fast in (True, False):
    source.FAST_JSONL = fast
    run_analysis([traces], out / str(fast))
"""


def _offline_findings(traces: Path, out: Path) -> dict[str, Any]:
    """``halo analyze`` on the captured file, by the typed fast path and the dict path: one findings.json."""
    proc = subprocess.run([sys.executable, "-c", OFFLINE, str(traces), str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fast, slow = ((out / name / "findings.json").read_bytes() for name in ("True", "False"))
    assert fast == slow
    return json.loads(fast)


def test_langgraph_serial_and_xdist(langgraph_suite: None, run_halo: Any, pytester: pytest.Pytester,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_TRACER_PROVIDER", "app")
    serial = run_halo("--halo")
    _check_capture(serial)
    assert {s["attributes"]["halo.test.worker"] for s in serial.spans} == {"master"}
    assert _app_exporter_spans(pytester) == len(serial.spans)  # the app's own exporter still gets every span
    found, problems = _findings_problems(serial)
    assert not problems, problems
    serial.result.stdout.fnmatch_lines(["halo: captured * spans in 10 traces from 10 tests (7 failing)*"])
    offline = _offline_findings(serial.dir / "traces.jsonl", pytester.path / "offline")
    assert {m["id"] for m in offline["failure_modes"]} == {m["id"] for m in found["failure_modes"]}

    monkeypatch.delenv("LG_TRACER_PROVIDER")
    parallel = run_halo("--halo", workers=2)
    _check_capture(parallel)
    assert {s["attributes"]["halo.test.worker"] for s in parallel.spans} == {"gw0", "gw1"}
    assert _app_exporter_spans(pytester) == 0  # no app provider: only halo's saw the spans
    assert serial.counts_by_test() == parallel.counts_by_test()
    assert serial.categories() == parallel.categories()
    again, problems = _findings_problems(parallel)
    assert not problems, problems
    assert [(m["id"], m["test_count"], m["failing_test_count"]) for m in found["failure_modes"]] == [
        (m["id"], m["test_count"], m["failing_test_count"]) for m in again["failure_modes"]]
