"""Real instrumentations over the real ``openai`` client against a loopback Chat Completions server.

Each case produced wrong findings on real data: GenAI chat spans without captured content
(``opentelemetry-instrumentation-openai-v2``'s default) were all "empty final answers", and tool
errors handed back to the model as tool messages (no tool span) went unnoticed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.analysis.assemble import TestIndex as RunIndex  # "Test*" names would be collected
from engine.analysis.config import AnalysisConfig
from engine.analysis.pipeline import analyze_paths, analyze_spans
from engine.findings import Findings
from engine.traces import ingest
from engine.traces.problems import Problems

openai = pytest.importorskip("openai")
pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

TOOLS = [{"type": "function", "function": {"name": "get_price", "description": "Price of an item",
          "parameters": {"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]}}}]


class FakeChat(BaseHTTPRequestHandler):
    """Scripted /v1/chat/completions: ask for get_price, then answer from the tool message."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        msgs = body["messages"]
        if msgs[-1]["role"] == "tool":
            message: dict[str, Any] = {"role": "assistant", "content": "Sorry: " + msgs[-1]["content"]}
            finish = "stop"
        else:
            item = msgs[-1]["content"].split()[-1]
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call_{item}", "type": "function",
                "function": {"name": "get_price", "arguments": json.dumps({"item": item})}}]}
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

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeChat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def shop(client: Any, tracer: Any, item: str, tool_result: str) -> str:
    """An agent loop whose tool runs without a span: its result only reaches the model as a tool message."""
    with tracer.start_as_current_span("shop_agent") as span:
        span.set_attribute("openinference.span.kind", "AGENT")
        span.set_attribute("gen_ai.agent.name", "shop")
        messages: list[dict[str, Any]] = [{"role": "user", "content": f"what does it cost: {item}"}]
        for _ in range(3):
            reply = client.chat.completions.create(model="fake-gpt", messages=messages, tools=TOOLS)
            msg = reply.choices[0].message
            if not msg.tool_calls:
                return str(msg.content)
            messages.append(msg.model_dump(exclude_none=True))
            for call in msg.tool_calls:
                messages.append({"role": "tool", "tool_call_id": call.id, "content": tool_result})
        return "gave up"


def run_instrumented(instrumentor: Any, base_url: str, tmp_path: Path, runs: list[tuple[str, str]]) -> Path:
    """Run the agent under ``instrumentor`` (private provider); spans written as the SDK's ``to_json`` lines."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(base_url=base_url, api_key="offline", max_retries=0)
        tracer = provider.get_tracer("shop-harness")
        for item, result in runs:
            shop(client, tracer, item, result)
    finally:
        instrumentor.uninstrument()
    out = tmp_path / "sdk-spans.jsonl"
    out.write_text("\n".join(s.to_json(indent=None) for s in exporter.get_finished_spans()) + "\n")
    return out


def both_paths(src: Path, tmp_path: Path) -> tuple[Findings, Findings]:
    """Findings through the typed canonical fast path and through the dict path, over the same spans."""
    canon = tmp_path / "canonical.jsonl"
    ingest.convert([src], canon)
    fast = analyze_paths([canon], config=AnalysisConfig(), tests=RunIndex(), problems=Problems())
    slow = analyze_spans(ingest.iter_spans([src], Problems()), config=AnalysisConfig())
    return fast, slow


def test_genai_chat_spans_without_content_are_not_empty_answers(
    base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    src = run_instrumented(OpenAIInstrumentor(), base_url, tmp_path, [(f"item{i}", "1.20") for i in range(6)])
    spans = [json.loads(line) for line in src.read_text().splitlines()]
    chats = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 12  # two calls per run, and they carry no content: the case under test
    assert not any(k.startswith(("gen_ai.output", "gen_ai.completion", "llm.output")) for s in chats for k in s["attributes"])
    for f in both_paths(src, tmp_path):
        assert [m for m in f.failure_modes if m.detector == "empty_final_output"] == []


def test_tool_errors_in_input_messages_are_detected(base_url: str, tmp_path: Path) -> None:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    runs = [("kiwi", "Error: unknown item kiwi")] * 3 + [("plum", '{"error": "price service unavailable"}')] * 2
    runs += [("apple", "1.20")] * 2
    src = run_instrumented(OpenAIInstrumentor(), base_url, tmp_path, runs)
    spans = [json.loads(line) for line in src.read_text().splitlines()]
    assert not any(s["attributes"].get("openinference.span.kind") == "TOOL" for s in spans)  # no tool spans
    for f in both_paths(src, tmp_path):
        modes = {m.title: m.run_count for m in f.failure_modes if m.detector == "tool_error"}
        assert modes == {
            "Tool `get_price` fails: Error: unknown item kiwi": 3,
            "Tool `get_price` fails: price service unavailable": 2,
        }, modes
