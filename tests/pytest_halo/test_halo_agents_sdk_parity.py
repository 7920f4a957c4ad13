"""One Agents SDK run, two ways in: captured live by ``pytest --halo`` and exported with ``span.export()``.

Both must give the same canonical spans (ids included; times and the test linkage capture adds
aside) and the same failure-mode ids — they used to map span names, guardrail keys and total
tokens differently, so an agent's modes depended on how its traces arrived. The real Runner and
the real ``OpenAIChatCompletionsModel`` over the ``openai`` client talk to a loopback fake server.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from engine.analysis.config import AnalysisConfig
from engine.analysis.pipeline import analyze_paths, read_tests_file
from engine.traces import conventions as C
from engine.traces.ingest import detect_format, iter_spans
from engine.traces.problems import Problems

pytest.importorskip("agents")

CONFTEST = '''
import json, os, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from agents import TracingProcessor, add_trace_processor, set_trace_processors


class ExportWriter(TracingProcessor):
    """What an exporter receives: span.export() / trace.export(), one JSON line each."""
    def __init__(self):
        self.path = f"export-{os.getpid()}.jsonl"
    def _write(self, item):
        with open(self.path, "a") as fh:
            fh.write(json.dumps(item) + "\\n")
    def on_trace_start(self, trace): pass
    def on_trace_end(self, trace): self._write(trace.export())
    def on_span_start(self, span): pass
    def on_span_end(self, span): self._write(span.export())
    def shutdown(self): pass
    def force_flush(self): pass


set_trace_processors([])  # offline: no uploader
add_trace_processor(ExportWriter())


class FakeChat(BaseHTTPRequestHandler):
    """price of X -> get_price(X), forecast for X -> get_forecast(X) (not a tool the agent has)."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        msgs = body["messages"]
        if msgs[-1]["role"] == "tool":
            message, finish = {"role": "assistant", "content": "The price is " + msgs[-1]["content"]}, "stop"
        else:
            words = msgs[-1]["content"].split()
            tool = "get_forecast" if words[0] == "forecast" else "get_price"
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_" + words[-1], "type": "function",
                "function": {"name": tool, "arguments": json.dumps({"item": words[-1]})}}]}
            finish = "tool_calls"
        payload = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": body["model"],
                   "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                   "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeChat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
'''

TESTS = '''
import pytest
from agents import (Agent, GuardrailFunctionOutput, InputGuardrailTripwireTriggered, OpenAIChatCompletionsModel,
                    Runner, function_tool, input_guardrail)
from openai import AsyncOpenAI


def tool_error(ctx, error):
    return f"error: {error}"


@function_tool(failure_error_function=tool_error)
def get_price(item: str) -> str:
    """Price of an item."""
    return {"apple": "1.20", "pear": "0.90"}[item]


@input_guardrail
def no_forbidden(ctx, agent, message):
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="forbidden" in str(message))


def shop(base_url):
    model = OpenAIChatCompletionsModel(model="fake-gpt",
                                       openai_client=AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0))
    return Agent(name="shop", instructions="Quote prices.", tools=[get_price], model=model,
                 input_guardrails=[no_forbidden])


@pytest.mark.parametrize("item", ["apple", "pear", "kiwi", "mango"])
def test_price(base_url, item):
    assert "error" not in Runner.run_sync(shop(base_url), f"price of {item}").final_output


@pytest.mark.parametrize("city", ["Oslo", "Rome"])
def test_forecast(base_url, city):
    Runner.run_sync(shop(base_url), f"forecast for {city}")


@pytest.mark.parametrize("n", [1, 2])
def test_guardrail(base_url, n):
    with pytest.raises(InputGuardrailTripwireTriggered):
        Runner.run_sync(shop(base_url), f"forbidden question {n} about apple")
'''

CAPTURE_ONLY = (C.TEST_NODEID, C.TEST_OUTCOME, C.TEST_PHASE, C.TEST_WORKER, C.RUN_ID)


def comparable(span: dict[str, Any]) -> dict[str, Any]:
    """A span without its times and the test linkage only live capture can know."""
    out = {k: v for k, v in span.items() if k not in ("start_time", "end_time")}
    out["attributes"] = {k: v for k, v in span["attributes"].items() if k not in CAPTURE_ONLY}
    return out


def by_original_id(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["attributes"][C.ORIGINAL_SPAN_ID]: comparable(s) for s in spans}


def test_live_capture_and_export_file_give_the_same_spans_and_modes(pytester: pytest.Pytester, run_halo: Any) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_shop=TESTS)
    run = run_halo("--halo", "--halo-skip-analysis")
    run.result.assert_outcomes(passed=4, failed=4)  # kiwi, mango (tool error); Oslo, Rome (missing tool)
    exports = sorted(pytester.path.glob("export-*.jsonl"))
    assert exports and all(detect_format(p) == "agents_sdk" for p in exports)
    problems = Problems()
    converted = list(iter_spans(exports, problems))
    assert problems.skipped_total == 0 and not problems.repaired
    live, exported = by_original_id(run.spans), by_original_id(converted)
    assert len(live) == len(run.spans) and len(exported) == len(converted)
    assert sum(s["attributes"]["openai_agents.span_type"] == "trace" for s in run.spans) == 8  # one root per run
    assert live.keys() == exported.keys()
    mismatched = [k for k in live if live[k] != exported[k]]
    assert not mismatched, (live[mismatched[0]], exported[mismatched[0]])
    types = {s["attributes"]["openai_agents.span_type"] for s in converted}
    assert {"trace", "task", "turn", "agent", "generation", "function", "guardrail"} <= types

    out = pytester.path / "export-canonical.jsonl"
    out.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in converted))
    tests = read_tests_file(run.dir / "tests.jsonl", Problems())
    modes = {}
    for name, path in (("live", run.dir / "traces.jsonl"), ("export", out)):
        f = analyze_paths([path], config=AnalysisConfig(), tests=tests, problems=Problems())
        modes[name] = {(m.id, m.detector, m.title) for m in f.failure_modes}
    assert modes["live"] == modes["export"]
    titles = {t for _, _, t in modes["live"]}
    assert "Model calls a tool that does not exist: `get_forecast`" in titles
    assert "Guardrail `no_forbidden` trips" in titles
    assert any(t.startswith("Tool `get_price` fails") for t in titles), titles
