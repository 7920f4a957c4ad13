"""OTLP/JSON: output of the real OTel SDK's OTLP encoder (protobuf JSON mapping) and the collector's hex-id variant."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from engine.traces.ingest import detect_format, iter_spans
from engine.traces.normalize import normalize
from engine.traces.problems import Problems
from engine.traces.span import STATUS_ERROR, ns_to_iso

encoder = pytest.importorskip("opentelemetry.exporter.otlp.proto.common.trace_encoder")
json_format = pytest.importorskip("google.protobuf.json_format")


def _sdk_spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "agent-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("openinference.instrumentation.test", "0.9")
    with tracer.start_as_current_span("agent run", attributes={"openinference.span.kind": "AGENT"}):
        with tracer.start_as_current_span("ChatCompletion", kind=otel_trace.SpanKind.CLIENT) as llm:
            llm.set_attributes(
                {
                    "openinference.span.kind": "LLM",
                    "llm.model_name": "gpt-4o",
                    "llm.token_count.prompt": 2**40,  # int64 → JSON string in the proto mapping
                    "llm.invocation_parameters.temperature": 0.5,
                    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup",
                    "tags": ["a", "b"],
                    "flag": True,
                }
            )
        try:
            with tracer.start_as_current_span("lookup", attributes={"openinference.span.kind": "TOOL", "tool.name": "lookup"}):
                raise KeyError("missing row")
        except KeyError:
            pass
    provider.shutdown()
    return exporter.get_finished_spans()


def _otlp_json(indent: int | None) -> tuple[str, list]:
    spans = _sdk_spans()
    request = encoder.encode_spans(spans)
    return json_format.MessageToJson(request, indent=indent), spans


def _hexify(doc: dict) -> dict:
    """The collector's file exporter writes hex ids where protobuf's mapping writes base64."""
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in sp:
                        sp[k] = base64.b64decode(sp[k]).hex()
    return doc


def test_real_encoder_output_pretty_and_lines(tmp_path: Path) -> None:
    pretty, sdk = _otlp_json(2)
    assert '"startTimeUnixNano": "' in pretty  # int64 as strings, ids base64
    compact, _ = _otlp_json(None)
    lines = tmp_path / "collector.jsonl"
    lines.write_text(json.dumps(_hexify(json.loads(compact))) + "\n" + compact.replace("\n", "") + "\n")
    doc = tmp_path / "traces.json"
    doc.write_text(pretty)
    for path, n in ((doc, 3), (lines, 6)):
        assert detect_format(path) == "otlp_json"
        problems = Problems()
        spans = list(iter_spans([path], problems))
        assert problems.skipped_total == 0 and len(spans) == n
    spans = list(iter_spans([doc], Problems()))
    truth = {s.name: s for s in sdk}
    by_name = {s["name"]: s for s in spans}
    for name, s in truth.items():
        got = by_name[name]
        assert got["trace_id"] == format(s.context.trace_id, "032x")
        assert got["span_id"] == format(s.context.span_id, "016x")
        assert got["parent_span_id"] == (format(s.parent.span_id, "016x") if s.parent else "")
        assert got["start_time"] == ns_to_iso(s.start_time) and got["end_time"] == ns_to_iso(s.end_time)
        assert got["scope"] == {"name": "openinference.instrumentation.test", "version": "0.9"}
        assert got["resource"]["attributes"]["service.name"] == "agent-svc"
    llm = by_name["ChatCompletion"]
    assert llm["kind"] == "SPAN_KIND_CLIENT"
    a = llm["attributes"]
    assert a["llm.token_count.prompt"] == 2**40 and a["tags"] == ["a", "b"] and a["flag"] is True
    assert a["llm.invocation_parameters.temperature"] == 0.5
    view = normalize(llm)
    assert (view.category, view.model, view.input_tokens) == ("llm", "gpt-4o", 2**40)
    assert [c.name for c in view.tool_calls_requested] == ["lookup"]
    tool = by_name["lookup"]
    assert tool["status"]["code"] == STATUS_ERROR and tool["attributes"]["exception.type"] == "KeyError"
    # the hex-id collector line and the base64 line decode to identical spans
    both = list(iter_spans([lines], Problems()))
    assert both[:3] == both[3:]


def test_any_value_types_and_bad_input(tmp_path: Path) -> None:
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "x",
        "kind": 3,
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "attributes": [
            {"key": "s", "value": {"stringValue": "v"}},
            {"key": "i", "value": {"intValue": "42"}},
            {"key": "d", "value": {"doubleValue": 1.5}},
            {"key": "b", "value": {"boolValue": False}},
            {"key": "arr", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"intValue": "2"}]}}},
            {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "inner", "value": {"stringValue": "z"}}]}}},
            {"key": "raw", "value": {"bytesValue": "AQID"}},
        ],
        "events": [{"name": "exception", "attributes": [{"key": "exception.message", "value": {"stringValue": "boom"}}]}],
        "status": {"code": 2},
    }
    doc = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "s"}, "spans": [
        span,
        {**span, "traceId": "", "spanId": "0000000000000001"},
        {**span, "spanId": "AAAAAAAAAAE=", "startTimeUnixNano": "0"},
        {**span, "spanId": "AAAAAAAAAAI=", "endTimeUnixNano": "1"},
    ]}]}]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc) + "\n{\"resourceSpans\": [tru\n" + json.dumps({"resourceSpans": 3}) + "\n")
    problems = Problems()
    spans = list(iter_spans([path], problems))
    assert problems.skipped == {"missing_trace_id": 1, "bad_timestamp": 1, "malformed_json": 1, "not_traces_data": 1}
    assert problems.repaired == {"end_before_start": 1}
    a = spans[0]["attributes"]
    assert (a["s"], a["i"], a["d"], a["b"], a["arr"], a["kv.inner"], a["raw"]) == ("v", 42, 1.5, False, [1, 2], "z", "010203")
    assert spans[0]["kind"] == "SPAN_KIND_CLIENT"
    assert spans[0]["status"] == {"code": STATUS_ERROR, "message": "boom"}
    assert spans[1]["span_id"] == "0000000000000002" and spans[1]["end_time"] == spans[1]["start_time"]
