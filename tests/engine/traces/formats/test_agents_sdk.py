"""OpenAI Agents SDK export: a real sample produced by the SDK's tracing (scripted model, real Runner)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

agents = pytest.importorskip("agents")

from agents import Agent, GuardrailFunctionOutput, Runner, function_tool, input_guardrail  # noqa: E402
from agents.items import ModelResponse  # noqa: E402
from agents.models.interface import Model  # noqa: E402
from agents.tracing import (  # noqa: E402
    TracingProcessor,
    custom_span,
    generation_span,
    get_trace_provider,
    mcp_tools_span,
    response_span,
    set_trace_processors,
    trace,
)
from agents.usage import Usage  # noqa: E402
from openai.types.responses import (  # noqa: E402
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from engine.traces import conventions as C  # noqa: E402
from engine.traces.ingest import detect_format, iter_spans  # noqa: E402
from engine.traces.normalize import normalize  # noqa: E402
from engine.traces.problems import Problems  # noqa: E402
from engine.traces.span import STATUS_ERROR  # noqa: E402


class _ExportWriter(TracingProcessor):
    """Collects exactly what the SDK hands exporters: ``span.export()`` / ``trace.export()``."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def on_trace_start(self, t) -> None:  # noqa: ANN001
        pass

    def on_trace_end(self, t) -> None:  # noqa: ANN001
        self.items.append(t.export())

    def on_span_start(self, s) -> None:  # noqa: ANN001
        pass

    def on_span_end(self, s) -> None:  # noqa: ANN001
        self.items.append(s.export())

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


def _text(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg_1", type="message", role="assistant", status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def _call(name: str, args: str, cid: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(type="function_call", name=name, arguments=args, call_id=cid, id=f"fc_{cid}",
                                    status="completed")


class _ScriptedModel(Model):
    """Returns scripted outputs, recording a generation span the way the SDK's OpenAI models do."""

    def __init__(self, script: list[list[Any]]) -> None:
        self.script = list(script)

    async def get_response(self, system_instructions, input, model_settings, tools, output_schema, handoffs,  # noqa: ANN001, A002
                           tracing, *, previous_response_id=None, conversation_id=None, prompt=None):  # noqa: ANN001
        out = self.script.pop(0)
        messages = [{"role": "system", "content": system_instructions}]
        if isinstance(input, str):
            messages.append({"role": "user", "content": input})
        with generation_span(model="scripted-1", input=messages, model_config={"temperature": 0}) as g:
            g.span_data.output = [o.model_dump() for o in out]
            g.span_data.usage = {"input_tokens": 11, "output_tokens": 7}
        return ModelResponse(output=out, usage=Usage(requests=1, input_tokens=11, output_tokens=7, total_tokens=18),
                             response_id=None)

    def stream_response(self, *a, **k):  # noqa: ANN002, ANN003
        raise NotImplementedError


@function_tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    if city == "Atlantis":
        raise ValueError("unknown city Atlantis")
    return f"sunny in {city}"


@input_guardrail
def no_swearing(ctx, agent, inp):  # noqa: ANN001
    return GuardrailFunctionOutput(output_info={"ok": True}, tripwire_triggered=False)


@pytest.fixture(scope="module")
def sdk_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    writer = _ExportWriter()
    provider = get_trace_provider()
    previous = list(getattr(getattr(provider, "_multi_processor", None), "_processors", ()))
    set_trace_processors([writer])
    try:
        helper = Agent(name="Helper", instructions="help", model=_ScriptedModel([[_text("done helping")]]))
        planner = Agent(
            name="Planner", instructions="plan", tools=[get_weather], handoffs=[helper], input_guardrails=[no_swearing],
            model=_ScriptedModel([
                [_call("get_weather", '{"city":"Paris"}', "c1"), _call("get_weather", '{"city":"Atlantis"}', "c2")],
                [_call("transfer_to_helper", "{}", "c3")],
            ]),
        )

        async def run() -> None:
            with trace("weather workflow", metadata={"case": "demo"}):
                with custom_span("prepare", {"step": 1}):
                    with mcp_tools_span(server="files", result=["read_file", "write_file"]):
                        pass
                    with response_span() as r:  # what the SDK's Responses-API model records
                        r.span_data.usage = {"input_tokens": 5, "output_tokens": 2}
                await Runner.run(planner, "weather in Paris and Atlantis?")

        asyncio.run(run())
    finally:
        set_trace_processors(previous)
    path = tmp_path_factory.mktemp("agents") / "export.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in writer.items))
    return path


def test_real_agents_sdk_export(sdk_export: Path) -> None:
    raw = [json.loads(line) for line in sdk_export.read_text().splitlines()]
    raw_spans = [r for r in raw if r["object"] == "trace.span"]
    assert detect_format(sdk_export) == "agents_sdk"
    problems = Problems()
    spans = list(iter_spans([sdk_export], problems))
    assert problems.skipped_total == 0
    root = spans.pop()  # one root span per SDK trace, as live capture writes it, after the trace's spans
    assert root["parent_span_id"] == "" and root["attributes"]["openai_agents.span_type"] == "trace"
    assert len(spans) == len(raw_spans)
    assert not any(s["parent_span_id"] == "" for s in spans)  # top-level spans hang off the root
    spans.append(root)
    trace_hex = raw_spans[0]["trace_id"].removeprefix("trace_")
    assert {s["trace_id"] for s in spans} == {trace_hex}
    ids = {s["span_id"] for s in spans}
    assert len(ids) == len(spans) and all(len(i) == 16 for i in ids)
    assert all(s["parent_span_id"] in ids for s in spans if s["parent_span_id"])  # links survive hashing
    for s, r in zip(spans[:-1], raw_spans, strict=True):
        assert s["attributes"][C.ORIGINAL_SPAN_ID] == r["id"]
        assert s["attributes"][C.SOURCE_FORMAT] == "agents_sdk"

    views = [normalize(s) for s in spans]
    types = [s["attributes"]["openai_agents.span_type"] for s in spans]
    assert sorted(set(types)) == ["agent", "custom", "function", "generation", "guardrail", "handoff", "mcp_tools",
                                  "response", "task", "trace", "turn"]
    mcp = next(s for s in spans if s["attributes"]["openai_agents.span_type"] == "mcp_tools")
    assert mcp["attributes"]["openai_agents.mcp.tools"] == ["read_file", "write_file"]
    assert normalize(mcp).category == "other"  # listing tools is not a tool call
    resp = next(normalize(s) for s in spans if s["attributes"]["openai_agents.span_type"] == "response")
    assert (resp.category, resp.input_tokens, resp.output_tokens) == ("llm", 5, 2)
    agents_ = {v.agent_name for v in views if v.category == "agent"}
    assert agents_ == {"Planner", "Helper"}
    llm = next(v for v in views if v.category == "llm" and v.model)
    assert (llm.model, llm.input_tokens, llm.output_tokens) == ("scripted-1", 11, 7)
    assert [c.name for c in llm.tool_calls_requested] == ["get_weather", "get_weather"]
    assert [c.arguments for c in llm.tool_calls_requested] == ['{"city":"Paris"}', '{"city":"Atlantis"}']
    assert any(v.output_text == "done helping" for v in views if v.category == "llm")
    tools = [v for v in views if v.category == "tool"]
    assert [(t.tool_name, t.tool_arguments, t.is_error) for t in tools] == [
        ("get_weather", '{"city":"Paris"}', False),
        ("get_weather", '{"city":"Atlantis"}', True),
    ]
    assert tools[0].tool_result == "sunny in Paris"
    failed = next(s for s in spans if s["status"]["code"] == STATUS_ERROR)
    assert failed["status"]["message"].startswith("Error running tool")
    handoff = next(s for s in spans if s["attributes"]["openai_agents.span_type"] == "handoff")
    assert (handoff["attributes"]["openai_agents.handoff.from_agent"],
            handoff["attributes"]["openai_agents.handoff.to_agent"]) == ("Planner", "Helper")
    guard = next(s for s in spans if s["attributes"]["openai_agents.span_type"] == "guardrail")
    assert guard["attributes"]["openai_agents.guardrail.name"] == "no_swearing"
    assert guard["attributes"]["openai_agents.guardrail.triggered"] is False
    roots = [s for s in spans if not s["parent_span_id"]]
    assert {r["attributes"]["openai_agents.workflow_name"] for r in roots} == {"weather workflow"}
    assert all(r["attributes"]["openai_agents.trace.metadata.case"] == "demo" for r in roots)


def test_agents_sdk_bad_lines(sdk_export: Path, tmp_path: Path) -> None:
    lines = sdk_export.read_text().splitlines()
    span = json.loads(lines[0])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([
        lines[0],
        lines[1][: len(lines[1]) // 2],  # truncated mid-line
        json.dumps({**span, "trace_id": None}),
        json.dumps({**span, "id": "span_x", "started_at": "not a time"}),
        json.dumps({**span, "id": "span_y", "ended_at": None}),
        json.dumps({**span, "object": "trace.thing"}),
    ]) + "\n")
    problems = Problems()
    spans = list(iter_spans([bad], problems))
    assert problems.skipped == {"malformed_json": 1, "missing_trace_id": 1, "bad_timestamp": 1, "unknown_object": 1}
    assert problems.repaired == {"missing_end_time": 1}
    assert len(spans) == 3  # the two good spans and their trace's root
    assert f"{bad}:2: malformed_json" in problems.examples[0]


def _export_runs(agent_factory: Any, questions: list[str]) -> list[dict[str, Any]]:
    """Run the real ``Runner`` once per question; return what the SDK hands exporters."""
    writer = _ExportWriter()
    provider = get_trace_provider()
    previous = list(getattr(getattr(provider, "_multi_processor", None), "_processors", ()))
    set_trace_processors([writer])
    try:
        for q in questions:
            try:
                asyncio.run(Runner.run(agent_factory(), q, max_turns=3))
            except Exception:  # noqa: BLE001 - the run failing is the case under test
                pass
    finally:
        set_trace_processors(previous)
    return writer.items


def test_missing_tool_on_turn_span_is_a_hallucinated_tool_naming_it(tmp_path: Path) -> None:
    """Recent SDKs record a call to a tool that does not exist as ``Tool not found`` on the turn span,
    with the tool's name in the error data; the export has no offered tools to compare against."""
    from engine.analysis.assemble import TestIndex
    from engine.analysis.config import AnalysisConfig
    from engine.analysis.pipeline import analyze_paths

    def agent() -> Agent:
        return Agent(name="Planner", instructions="plan", tools=[get_weather],
                     model=_ScriptedModel([[_call("get_forecast", '{"city":"Paris"}', "c1")]]))

    items = _export_runs(agent, ["forecast for Paris", "forecast for Rome", "forecast for Oslo"])
    turns = [i for i in items if i.get("object") == "trace.span" and (i.get("error") or {}).get("message")]
    assert turns and all(i["error"] == {"message": "Tool not found", "data": {"tool_name": "get_forecast"}}
                         for i in turns)  # the SDK's shape this test is about
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    spans = list(iter_spans([path], Problems()))
    failed = [s for s in spans if s["status"]["code"] == STATUS_ERROR]
    assert {s["status"]["message"] for s in failed} == {"Tool not found: get_forecast"}
    f = analyze_paths([path], config=AnalysisConfig(), tests=TestIndex(), problems=Problems())
    modes = [(m.detector, m.key, m.title, m.run_count) for m in f.failure_modes]
    assert ("hallucinated_tool", "get_forecast", "Model calls a tool that does not exist: `get_forecast`", 3) in modes
    assert not [m for m in modes if m[0] == "exception"], modes


@pytest.mark.parametrize("where", ["tool_calls", "input", "response_output"])
def test_non_list_fields_in_exported_span_data_lose_no_span(where: str, tmp_path: Path) -> None:
    """Exported span data is untrusted: a field that should be a list but is not costs that field, not the file."""
    base = {"object": "trace.span", "trace_id": "trace_" + "ab" * 16, "parent_id": None, "error": None,
            "started_at": "2025-01-01T00:00:00.000000+00:00", "ended_at": "2025-01-01T00:00:01.000000+00:00"}
    data: dict[str, Any] = {"type": "generation", "model": "m", "input": [{"role": "user", "content": "hi"}],
                            "output": [{"type": "message", "content": "x"}]}
    if where == "tool_calls":
        data["output"][0]["tool_calls"] = 5
    elif where == "input":
        data["input"] = 5
    else:
        data = {"type": "response", "input": 5, "response": {"id": "r", "model": "m", "tools": 5, "output": 5}}
    first = {**base, "id": "span_1", "span_data": data}
    second = {**base, "id": "span_2", "span_data": {"type": "function", "name": "f", "input": "{}", "output": "ok"}}
    path = tmp_path / "sdk.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    problems = Problems()
    spans = list(iter_spans([path], problems))
    assert "converter_error" not in problems.skipped, problems.to_dict()
    assert "execute_tool f" in {s["name"] for s in spans}  # the span after the odd one
    assert len(spans) == 3  # both spans and their trace's root
