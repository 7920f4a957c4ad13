"""The engine's own tools called directly: get_tests, get_failure_modes, synthesize_traces caps, registry scopes."""

from __future__ import annotations

import asyncio
import json

from scripted_server import role_of, text

from engine.findings import DatasetSummary, Evidence, FailureMode, Findings
from engine.llm.client import ModelClient
from engine.llm.engine import RunState
from engine.llm.events import EngineEvent
from engine.llm.tools.base import AgentInfo, ToolCallContext


def _run_state(settings, store, findings=None, tests_file=None):
    events: list[EngineEvent] = []
    return RunState(settings, store, findings, tests_file=tests_file, out_dir=None, emit=events.append,
                client=ModelClient(settings), providers=[]), events


def _call(run, name, args, agent=None):
    agent = agent or AgentInfo("root", 0, True)
    tool = run.registry.get(name, agent)
    assert tool is not None, name

    async def go():
        try:
            return await tool.run(ToolCallContext(agent=agent, env=run.env), tool.arguments.model_validate(args))
        finally:
            await run.client.close()

    return asyncio.run(go())


def test_get_tests_from_the_spans_and_from_tests_jsonl(make_settings, tau_store, tmp_path):
    run, _ = _run_state(make_settings(), tau_store)
    got = _call(run, "get_tests", {"outcome": ["failed"], "limit": 5})
    assert got["total"] == 116 and got["outcomes"] == {"failed": 116, "passed": 84}
    assert len(got["tests"]) == 5 and all(t["outcome"] == "failed" and t["trace_ids"] for t in got["tests"])
    assert got["note"] == "continue with offset=5"
    tests = tmp_path / "tests.jsonl"
    tests.write_text(json.dumps({"nodeid": "t::a", "outcome": "passed", "duration": 0.5, "trace_ids": ["x"]})
                     + "\nnot json\n" + json.dumps({"nodeid": "t::b", "outcome": "error", "trace_ids": []}) + "\n")
    run, _ = _run_state(make_settings(), tau_store, tests_file=tests)
    got = _call(run, "get_tests", {"outcome": "error"})
    assert got["total"] == 1 and got["tests"][0]["nodeid"] == "t::b" and got["outcomes"] == {"passed": 1, "error": 1}


def test_get_failure_modes_lists_the_detector_facts(make_settings, tau_store):
    findings = Findings(dataset=DatasetSummary(runs=200, run_unit="tests"), failure_modes=[
        FailureMode(id="fm-1", title="Tool x fails", category="tool_error", detector="tool_errors", key="k",
                    run_count=12, prevalence=0.06, failing_test_count=11,
                    evidence=[Evidence(trace_id="t1", span_id="s1")]),
        FailureMode(id="fm-2", title="loops", category="loop", detector="repetition", key="k2", run_count=3),
    ])
    run, _ = _run_state(make_settings(), tau_store, findings)
    got = _call(run, "get_failure_modes", {"category": "tool_error"})
    assert got["total_modes"] == 1 and got["runs"] == 200
    (m,) = got["failure_modes"]
    assert (m["id"], m["run_count"], m["failing_test_count"], m["evidence"]) == (
        "fm-1", 12, 11, [{"trace_id": "t1", "span_id": "s1"}])


def test_synthesize_traces_caps_ids_and_bytes(scripted, make_settings, tau_store):
    srv = scripted(lambda req, n: text("summary of the traces"))
    run, _ = _run_state(make_settings(srv, synthesis_model="cheap-model", synthesis_max_traces=3,
                                      synthesis_max_bytes=6000), tau_store)
    ids = tau_store.trace_ids[:5]
    got = _call(run, "synthesize_traces", {"trace_ids": [*ids, "f" * 32], "focus": "errors"})
    assert got["summary"] == "summary of the traces" and got["trace_ids"] == ids[:3]
    assert got["not_summarized"].startswith("3 ids over the cap of 3")
    (req,) = srv.requests
    assert role_of(req) == "synthesis" and req["model"] == "cheap-model"
    assert len(req["messages"][1]["content"].encode()) <= 6000 + 200
    assert "reasoning_effort" not in req


def test_scopes_root_only_and_delegating(make_settings, tau_store):
    run, _ = _run_state(make_settings(max_depth=1), tau_store)
    names = lambda a: {t.name for t in run.registry.for_agent(a)}  # noqa: E731
    root, sub = AgentInfo("root", 0, True), AgentInfo("root.1", 1, False)
    assert {"final_answer", "call_subagent"} <= names(root)
    assert "final_answer" not in names(sub) and "call_subagent" not in names(sub)
    assert {"get_dataset_overview", "query_traces", "count_traces", "view_trace", "view_spans", "search_trace",
            "search_span", "synthesize_traces", "get_context_item", "get_failure_modes", "get_tests"} <= names(sub)
    asyncio.run(run.client.close())


def test_store_tools_are_bound_to_a_checked_store_at_registration(make_settings, tau_store):
    """The store is checked against ``QueryStore`` once, when the tools are built; each tool holds its method."""
    import asyncio

    import pytest

    from engine.llm.engine import run_engine
    from engine.llm.tools.trace_tools import store_tools

    tools = {t.name: t for t in store_tools(tau_store)}
    assert tools["count_traces"].method == tau_store.count_traces
    run, _ = _run_state(make_settings(), tau_store)
    assert _call(run, "count_traces", {}).total == len(tau_store.trace_ids)

    class HalfStore:
        trace_ids: list[str] = []

        def count_traces(self, filters=None):
            return 0

    with pytest.raises(TypeError, match="HalfStore is not a trace store: it lacks get_dataset_overview, "
                                        "query_traces, view_trace"):
        store_tools(HalfStore())
    result = asyncio.run(run_engine(make_settings(), HalfStore()))  # refused before any request, one line
    assert result.failed and result.totals.requests == 0
    assert result.notes == ["LLM engine failed: TypeError: HalfStore is not a trace store: it lacks "
                            "get_dataset_overview, query_traces, view_trace, view_spans, search_trace, search_span, "
                            "render_trace"]


def test_a_notice_is_its_own_line_once_even_on_a_tty():
    import io

    from engine.llm.progress import ProgressReporter

    out = io.StringIO()
    progress = ProgressReporter(out, tty=True, interval_s=0)
    for _ in range(2):
        progress(EngineEvent("notice", data={"message": "max cost $1 cannot be enforced"}))
    progress(EngineEvent("agent_start", "root", 0))
    lines = out.getvalue().split("\n")
    assert lines[0] == "\r\x1b[2Khalo: LLM max cost $1 cannot be enforced"
    assert out.getvalue().count("cannot be enforced") == 1 and lines[1].startswith("\r\x1b[2Khalo: LLM agents 1")
