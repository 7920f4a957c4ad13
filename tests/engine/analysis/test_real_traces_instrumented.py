"""Real instrumentations over the real ``openai`` client against a loopback Chat Completions server.

Each case produced wrong findings on real data: GenAI chat spans without captured content
(``opentelemetry-instrumentation-openai-v2``'s default) were all "empty final answers", and tool
errors handed back to the model as tool messages (no tool span) went unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_chat_server import chat_server_fixture, price_script

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


base_url = chat_server_fixture(price_script, scope="module")  # get_price(item), then "The price is <result>"


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
