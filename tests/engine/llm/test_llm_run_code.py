"""``run_code`` through the engine with the real Deno + Pyodide sandbox: code over all traces, ``llm_query`` inside."""

from __future__ import annotations

import asyncio
import json

import pytest
from scripted_server import calls, role_of, text, tool_names, tool_results, turn_of

from engine.llm.engine import run_engine


@pytest.fixture(autouse=True)
def _sandbox_provisioned() -> None:
    from engine.sandbox import SandboxUnavailable, provision

    try:
        provision.require()
    except SandboxUnavailable as exc:
        pytest.skip(f"{exc} (CI runs `halo sandbox setup`)")

CODE = """
import traces
rows = traces.rollups()
failed = sum(1 for r in rows if r["test_outcome"] == "failed")
print(len(rows), failed)
print(llm_query("Classify this error in one word", "payment amount does not add up"))
"""


def test_run_code_counts_over_every_trace_and_maps_a_cheap_model(scripted, make_settings, tau_store):
    def script(req, n):
        if role_of(req) == "other":  # llm_query from the sandboxed code, on the synthesis model
            assert req["model"] == "cheap" and "payment amount does not add up" in req["messages"][-1]["content"]
            return text("billing", tokens_in=30, tokens_out=2)
        if turn_of(req) == 0:
            assert "run_code" in tool_names(req)
            return calls(("run_code", {"code": CODE, "timeout_s": 60}))
        out = json.loads(tool_results(req, "run_code")[0])
        return calls(("final_answer", {"answer": out["stdout"]}))

    srv = scripted(script)
    settings = make_settings(srv, run_code=True, synthesis_model="cheap", request_timeout_s=30)
    result = asyncio.run(run_engine(settings, tau_store))
    assert result.answer.split() == ["200", "116", "billing"], result.answer
    assert result.totals.requests == 3  # two root turns and one llm_query, all under the run's budget


MAP = """
answers, refused = [], None
for i in range(40):
    try:
        answers.append(llm_query("Classify", f"error {i}"))
    except Exception as exc:
        refused = str(exc)
        break
print(len(answers))
print(refused)
"""


def test_llm_query_stops_at_the_runs_token_budget(scripted, make_settings, tau_store):
    def script(req, n):
        if role_of(req) == "other":
            return text("billing", tokens_in=400, tokens_out=100)  # 500 tokens a query
        if turn_of(req) == 0:
            return calls(("run_code", {"code": MAP, "timeout_s": 60}), tokens_in=100, tokens_out=10)
        out = json.loads(tool_results(req, "run_code")[0])
        return calls(("final_answer", {"answer": out["stdout"]}))

    srv = scripted(script)
    settings = make_settings(srv, run_code=True, synthesis_model="cheap", request_timeout_s=30, max_tokens=3000)
    result = asyncio.run(run_engine(settings, tau_store))
    queries = len([r for r in srv.requests if r["model"] == "cheap"])
    answered, refusal = (result.answer.splitlines() + ["", ""])[:2]
    assert 0 < int(answered) == queries < 10  # the budget, not the loop, ended the mapping
    assert "budget" in refusal


def test_a_sandbox_that_cannot_start_is_off_for_the_rest_of_the_run(scripted, make_settings, tau_store):
    from engine.llm.tools.run_code import RunCodeProvider
    from engine.sandbox import SandboxLimits

    def script(req, n):
        if turn_of(req) < 2:
            return calls(("run_code", {"code": "print(1)"}))
        return calls(("final_answer", {"answer": json.dumps(tool_results(req, "run_code"))}))

    provider = RunCodeProvider(SandboxLimits(boot_timeout_s=0.01))  # no runtime boots in 10 ms
    srv = scripted(script)
    result = asyncio.run(run_engine(make_settings(srv), tau_store, providers=[provider]))
    first, second = json.loads(result.answer)
    assert first.startswith("error: run_code unavailable: the sandbox did not start (timed out)")
    assert first.endswith("run_code is off for the rest of this run") and second == first
    assert provider.unavailable == first.removeprefix("error: ")


def test_parallel_run_code_calls_each_see_their_own_selection(scripted, make_settings, tau_store):
    first, second = tau_store.trace_ids[:2]
    code = "import traces\nprint(sorted({s['trace_id'] for s in traces.spans()}))"

    def script(req, n):
        if turn_of(req) == 0:
            return calls(("run_code", {"code": code, "trace_ids": [first], "timeout_s": 60}),
                         ("run_code", {"code": code, "trace_ids": [second], "timeout_s": 60}))
        outs = [json.loads(r)["stdout"].strip() for r in tool_results(req, "run_code")]
        return calls(("final_answer", {"answer": json.dumps(outs)}))

    srv = scripted(script)
    result = asyncio.run(run_engine(make_settings(srv, run_code=True, request_timeout_s=30), tau_store))
    assert json.loads(result.answer) == [str([first]), str([second])]


def test_llm_query_text_is_capped_like_synthesis(scripted, make_settings, tau_store):
    code = "print(llm_query('Classify', 'x' * 5_000_000))"

    def script(req, n):
        if role_of(req) == "other":
            return text("big")
        if turn_of(req) == 0:
            return calls(("run_code", {"code": code, "timeout_s": 60}))
        return calls(("final_answer", {"answer": json.loads(tool_results(req, "run_code")[0])["stdout"]}))

    srv = scripted(script)
    settings = make_settings(srv, run_code=True, synthesis_model="cheap", request_timeout_s=30,
                             synthesis_max_bytes=8192)
    result = asyncio.run(run_engine(settings, tau_store))
    asked = [r["messages"][-1]["content"] for r in srv.requests if r["model"] == "cheap"]
    assert result.answer.strip() == "big" and len(asked) == 1
    assert len(asked[0].encode()) <= 8192 and "text cut for llm_query" in asked[0]


SPANS_BY_TRACE = """
import traces, collections
c = collections.Counter(s["trace_id"] for s in traces.spans())
print(len(c), sum(c.values()))
"""


def test_run_code_selects_traces_by_a_store_filter(scripted, make_settings, tau_store):
    """`filters` (query_traces' model) is resolved to ids on the host: the spans of exactly those traces, capped."""
    from engine.traces.query_models import TraceFilters

    flt = {"has_errors": True, "test_outcome": "failed"}
    wanted = tau_store.match_trace_ids(TraceFilters(**flt))
    assert 0 < len(wanted) < len(tau_store.trace_ids)

    def script(req, n):
        turn = turn_of(req)
        if turn == 0:
            return calls(("run_code", {"code": SPANS_BY_TRACE, "filters": flt, "timeout_s": 60}))
        if turn == 1:
            return calls(("run_code", {"code": SPANS_BY_TRACE, "filters": {"regex_pattern": "("}, "timeout_s": 60}))
        return calls(("final_answer", {"answer": "\n".join(tool_results(req, "run_code"))}))

    srv = scripted(script)
    result = asyncio.run(run_engine(make_settings(srv, run_code=True, request_timeout_s=30), tau_store))
    first, bad = result.answer.split("\n", 1)
    out = json.loads(first)
    spans = sum(len(tau_store.spans(t)) for t in wanted)
    assert out["stdout"] == f"{len(wanted)} {spans}\n", out
    assert out["selected"] == {"traces": len(wanted), "matched_by_filters": len(wanted)}
    assert bad.startswith("error: filters: ") and "Traceback" not in bad  # the model can fix its regex


def test_select_traces_puts_ids_first_dedupes_and_caps(tau_store):
    from engine.llm.tools.run_code import select_traces
    from engine.traces.query_models import TraceFilters

    ids = tau_store.trace_ids
    got = select_traces(tau_store, [ids[5], "f" * 32, ids[5]], TraceFilters(), cap=10)
    assert got.trace_ids == [ids[5], *[t for t in ids if t != ids[5]][:9]]
    assert got.matched == len(ids) and got.unknown == 1 and "spans given for the first 10" in got.note
    assert select_traces(tau_store, [ids[1]], None).trace_ids == [ids[1]]
    with pytest.raises(TypeError, match="cannot select traces by filter"):
        select_traces(object(), [], None)
