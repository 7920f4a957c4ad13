"""Langfuse observation exports and Phoenix span exports → canonical spans.

Fixture shapes follow the projects' public API definitions:
* Langfuse: ``GET /api/public/observations`` returns ``{"data": [Observation], "meta": {...}}``;
  ``Observation`` fields as in Langfuse's OpenAPI spec (mirrored by the JS SDK's
  ``Observation`` interface: id, traceId, type, name, startTime, endTime, completionStartTime,
  model, modelParameters, input, output, usage, usageDetails, level, statusMessage,
  parentObservationId, metadata, version, environment).
* Phoenix: ``GET /v1/projects/{id}/spans`` returns ``{"data": [Span], "next_cursor"}``; ``Span``
  is defined in ``src/phoenix/server/api/routers/v1/spans.py`` (id, name, context{trace_id,
  span_id}, span_kind, parent_id, start_time, end_time, status_code, status_message,
  attributes flattened with ``openinference.span.kind`` popped into span_kind, events).
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.traces import conventions
from engine.traces.ingest import detect_format, iter_spans
from engine.traces.normalize import normalize
from engine.traces.problems import Problems
from engine.traces.span import STATUS_ERROR

TRACE_UUID = "7d4f1c2a-9b3e-4c5d-8e6f-0a1b2c3d4e5f"

LANGFUSE = {
    "data": [
        {
            "id": "0b1c2d3e-0000-4000-8000-000000000001", "traceId": TRACE_UUID, "type": "AGENT",
            "name": "support-agent", "startTime": "2025-03-01T10:00:00.000Z", "endTime": "2025-03-01T10:00:05.250Z",
            "parentObservationId": None, "level": "DEFAULT", "statusMessage": None, "input": {"question": "refund?"},
            "output": "Refund issued.", "metadata": {"user": "u1"}, "version": None, "environment": "default",
            "usage": {"input": 0, "output": 0, "total": 0, "unit": "TOKENS"}, "usageDetails": {},
        },
        {
            "id": "0b1c2d3e-0000-4000-8000-000000000002", "traceId": TRACE_UUID, "type": "GENERATION",
            "name": "ChatOpenAI", "startTime": "2025-03-01T10:00:00.100Z", "endTime": "2025-03-01T10:00:01.900Z",
            "completionStartTime": "2025-03-01T10:00:00.700Z",
            "parentObservationId": "0b1c2d3e-0000-4000-8000-000000000001", "model": "gpt-4o-mini",
            "modelParameters": {"temperature": 0},
            "input": [{"role": "system", "content": "You are support."}, {"role": "user", "content": "refund?"}],
            "output": {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "issue_refund", "arguments": "{\"order\": 42}"}}]},
            "usage": {"input": 120, "output": 18, "total": 138, "unit": "TOKENS"},
            "usageDetails": {"input": 120, "output": 18, "total": 138},
            "level": "DEFAULT", "statusMessage": None, "metadata": {},
        },
        {
            "id": "0b1c2d3e-0000-4000-8000-000000000003", "traceId": TRACE_UUID, "type": "TOOL",
            "name": "issue_refund", "startTime": "2025-03-01T10:00:02.000Z", "endTime": "2025-03-01T10:00:02.400Z",
            "parentObservationId": "0b1c2d3e-0000-4000-8000-000000000001", "input": {"order": 42},
            "output": None, "level": "ERROR", "statusMessage": "PaymentGatewayTimeout", "metadata": None,
        },
        {
            "id": "0b1c2d3e-0000-4000-8000-000000000004", "traceId": TRACE_UUID, "type": "EVENT",
            "name": "retry-scheduled", "startTime": "2025-03-01T10:00:02.500Z", "endTime": None,
            "parentObservationId": "0b1c2d3e-0000-4000-8000-000000000001", "level": "WARNING",
        },
        {"id": "bad-1", "traceId": None, "type": "SPAN", "startTime": "2025-03-01T10:00:00Z"},
        {"id": "bad-2", "traceId": TRACE_UUID, "type": "SPAN", "startTime": "soon"},
    ],
    "meta": {"page": 1, "limit": 50, "totalItems": 6, "totalPages": 1},
}

PHOENIX = {
    "data": [
        {
            "id": "U3BhbjoxMjM=", "name": "agent.run",
            "context": {"trace_id": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4", "span_id": "1a2b3c4d5e6f7a8b"},
            "span_kind": "AGENT", "parent_id": None,
            "start_time": "2024-01-01T12:00:00+00:00", "end_time": "2024-01-01T12:00:03+00:00",
            "status_code": "OK", "status_message": "",
            "attributes": {"input.value": "plan a trip", "output.value": "done"}, "events": [],
        },
        {
            "id": "U3BhbjoxMjQ=", "name": "ChatCompletion",
            "context": {"trace_id": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4", "span_id": "2b3c4d5e6f7a8b9c"},
            "span_kind": "LLM", "parent_id": "1a2b3c4d5e6f7a8b",
            "start_time": "2024-01-01T12:00:00.5+00:00", "end_time": "2024-01-01T12:00:01.25+00:00",
            "status_code": "OK", "status_message": "",
            "attributes": {
                "llm.model_name": "gpt-4", "llm.token_count.prompt": 100, "llm.token_count.completion": 50,
                "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "plan a trip",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "search_flights",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "{\"to\": \"Oslo\"}",
                "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {
                    "name": "search_flights", "parameters": {"type": "object", "properties": {"to": {"type": "string"}}}}}),
            },
            "events": [],
        },
        {
            "id": "U3BhbjoxMjU=", "name": "search_flights",
            "context": {"trace_id": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4", "span_id": "3c4d5e6f7a8b9c0d"},
            "span_kind": "TOOL", "parent_id": "1a2b3c4d5e6f7a8b",
            "start_time": "2024-01-01T12:00:01.3+00:00", "end_time": "2024-01-01T12:00:02+00:00",
            "status_code": "ERROR", "status_message": "",
            "attributes": {"tool.name": "search_flights", "input.value": "{\"to\": \"Oslo\"}"},
            "events": [{"name": "exception", "timestamp": "2024-01-01T12:00:02+00:00",
                        "attributes": {"exception.type": "TimeoutError", "exception.message": "upstream timed out"}}],
        },
        {"id": "x", "name": "broken", "context": {"trace_id": "", "span_id": "4d5e6f7a8b9c0d1e"},
         "span_kind": "CHAIN", "start_time": "2024-01-01T12:00:00Z", "end_time": "2024-01-01T12:00:00Z",
         "status_code": "UNSET"},
    ],
    "next_cursor": None,
}


def test_langfuse_observations(tmp_path: Path) -> None:
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(LANGFUSE, indent=2))
    assert detect_format(path) == "langfuse"
    problems = Problems()
    spans = list(iter_spans([path], problems))
    assert problems.skipped == {"missing_trace_id": 1, "bad_timestamp": 1}
    assert len(spans) == 4
    assert {s["trace_id"] for s in spans} == {TRACE_UUID.replace("-", "")}
    agent, gen, tool, event = spans
    assert gen["parent_span_id"] == agent["span_id"] == tool["parent_span_id"]
    assert agent["attributes"][conventions.ORIGINAL_SPAN_ID] == LANGFUSE["data"][0]["id"]
    views = [normalize(s) for s in spans]
    assert [v.category for v in views] == ["agent", "llm", "tool", "other"]
    g = views[1]
    assert (g.model, g.input_tokens, g.output_tokens) == ("gpt-4o-mini", 120, 18)
    assert [(c.name, c.arguments) for c in g.tool_calls_requested] == [("issue_refund", '{"order": 42}')]
    t = views[2]
    assert (t.tool_name, t.tool_arguments, t.is_error, t.error_message) == (
        "issue_refund", '{"order":42}', True, "PaymentGatewayTimeout")
    assert tool["status"]["code"] == STATUS_ERROR
    assert event["start_time"] == event["end_time"] and not views[3].is_error  # WARNING is not an error
    assert agent["attributes"]["langfuse.observation.metadata.user"] == "u1"


def test_phoenix_spans(tmp_path: Path) -> None:
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(PHOENIX))
    assert detect_format(path) == "phoenix"
    problems = Problems()
    spans = list(iter_spans([path], problems))
    assert problems.skipped == {"missing_trace_id": 1}
    assert [s["name"] for s in spans] == ["agent.run", "ChatCompletion", "search_flights"]
    agent, llm, tool = (normalize(s) for s in spans)
    assert agent.category == "agent" and spans[1]["parent_span_id"] == spans[0]["span_id"]
    assert spans[1]["start_time"] == "2024-01-01T12:00:00.500000000Z"
    assert (llm.category, llm.model, llm.input_tokens) == ("llm", "gpt-4", 100)
    assert llm.tools_offered == {"search_flights": {"type": "object", "properties": {"to": {"type": "string"}}}}
    assert [c.name for c in llm.tool_calls_requested] == ["search_flights"]
    assert (tool.tool_name, tool.is_error, tool.error_message, tool.error_type) == (
        "search_flights", True, "upstream timed out", "TimeoutError")


def test_phoenix_otlpv1_variant(tmp_path: Path) -> None:
    """``GET /v1/projects/{id}/spans/otlpv1``: OTLP spans with snake_case fields (same router file)."""
    doc = {"data": [{
        "trace_id": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4", "span_id": "1a2b3c4d5e6f7a8b", "parent_span_id": None,
        "name": "llm", "start_time_unix_nano": 1704110400000000000, "end_time_unix_nano": 1704110401000000000,
        "attributes": [{"key": "openinference.span.kind", "value": {"string_value": "LLM"}},
                       {"key": "llm.token_count.prompt", "value": {"int_value": 7}}],
        "status": {"code": 2, "message": "rate limited"},
    }], "next_cursor": None}
    path = tmp_path / "otlpv1.json"
    path.write_text(json.dumps(doc))
    assert detect_format(path) == "phoenix"
    (span,) = list(iter_spans([path], Problems()))
    v = normalize(span)
    assert (v.category, v.input_tokens, v.is_error, v.error_message) == ("llm", 7, True, "rate limited")
    assert span["attributes"][conventions.SOURCE_FORMAT] == "phoenix"
