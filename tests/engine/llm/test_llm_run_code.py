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
