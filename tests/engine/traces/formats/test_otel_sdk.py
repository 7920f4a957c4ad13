"""OpenTelemetry SDK ``to_json`` spans: the real any-agent corpus, the real SDK's output, and bad input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from engine.traces.formats.otel_sdk import CONFLICT_RX
from engine.traces.ingest import IngestStats, detect_format, iter_spans
from engine.traces.normalize import normalize
from engine.traces.problems import Problems
from engine.traces.span import STATUS_ERROR, iso_to_ns

# The 7 files with committed git merge-conflict markers (found with `grep -l '<<<<<<<' *.json`);
# each starts its first conflict at line 7. None of their spans is free of markers, so each file is
# skipped whole and counted once as merge_conflict_markers.
CONFLICTED = {
    "agno-2025-07-04-8ec9766a.json",
    "google-2025-07-04-2877631e.json",
    "google-2025-07-04-dc04cb86.json",
    "llama_index-2025-07-04-8a197070.json",
    "smolagents-2025-07-04-af716986.json",
    "tinyagent-2025-07-04-0f778181.json",
    "tinyagent-2025-07-04-1646d934.json",
}
# Spans per framework over the 79 clean files, counted with the stdlib:
# sum(len(json.load(f)["spans"])) grouped by the file-name prefix. Total 572.
SPANS_BY_FRAMEWORK = {
    "agno": 54,
    "google": 80,
    "langchain": 109,
    "llama_index": 144,
    "openai": 72,
    "smolagents": 29,
    "tinyagent": 84,
}


def test_any_agent_corpus(corpora: Path) -> None:
    d = corpora / "any-agent-otel"
    files = sorted(d.glob("*.json"))
    assert len(files) == 86
    stats = IngestStats()
    spans = list(iter_spans(files, stats.problems, stats=stats))
    assert {f.format for f in stats.files} == {"otel_sdk"}
    assert {Path(f.path).name for f in stats.files if f.skipped} == CONFLICTED
    assert stats.problems.skipped == {"merge_conflict_markers": 7}
    assert all(e.endswith("file not parsed)") and ".json:7: merge_conflict_markers" in e
               for e in stats.problems.examples if "merge_conflict" in e)
    by_fw: Counter[str] = Counter()
    for f in stats.files:
        name = Path(f.path).name
        if name not in CONFLICTED:
            assert f.spans == len(json.loads(Path(f.path).read_text())["spans"]), name
        by_fw[name.rsplit("-", 4)[0]] += f.spans
    assert dict(by_fw) == SPANS_BY_FRAMEWORK
    assert len(spans) == 572
    # Why whole-file skips lose nothing: in every conflicted file, each span object of the pretty-printed
    # "spans" array (from a "    {" line to its "    }" line) contains at least one conflict marker line.
    for name in CONFLICTED:
        lines = (d / name).read_text().splitlines()
        starts = [i for i, line in enumerate(lines) if line == "    {"]
        ends = [i for i, line in enumerate(lines) if line.startswith("    }")]
        assert starts and len(starts) == len(ends)
        for a, b in zip(starts, ends, strict=True):
            assert any(CONFLICT_RX.match(line) for line in lines[a : b + 1]), (name, a)
    # 36 spans (llama_index runs) were recorded before they ended: end_time null → end = start, repaired
    assert stats.problems.repaired == {"missing_end_time": 36}
    for s in spans:
        assert len(s["trace_id"]) == 32 and len(s["span_id"]) == 16
        assert iso_to_ns(s["end_time"]) >= iso_to_ns(s["start_time"])
    errors = [s for s in spans if s["status"]["code"] == STATUS_ERROR]
    assert len(errors) == 1 and "unexpected keyword argument" in errors[0]["status"]["message"]


def test_any_agent_normalized_view(corpora: Path) -> None:
    """GenAI (any-agent) and OpenInference dialects normalize to the same facts."""
    d = corpora / "any-agent-otel"
    spans = list(iter_spans([d / "tinyagent-2025-05-23-ca827ddf.json", d / "openai-2025-08-01-bfbf04ca.json"], Problems()))
    views = [normalize(s) for s in spans]
    llm = next(v for v in views if v.category == "llm")
    assert llm.model and llm.input_tokens and llm.output_tokens
    tool = next(v for v in views if v.category == "tool" and v.tool_name == "get_current_time")
    assert "America/New_York" in tool.tool_arguments and tool.tool_result
    requested = [c.name for v in views if v.category == "llm" for c in v.tool_calls_requested]
    assert "get_current_time" in requested and "write_file" in requested
    # OpenInference spans in the corpus (openinference.span.kind + llm.* keys)
    oi = [normalize(s) for s in iter_spans([d], Problems()) if "llm.model_name" in s["attributes"]]
    assert len(oi) == 9 and all(v.category == "llm" and v.input_tokens and v.model for v in oi)


class _JsonLines(SpanExporter):
    """Writes what the real SDK produces: ``ReadableSpan.to_json()`` per span."""

    def __init__(self, indent: int | None) -> None:
        self.chunks: list[str] = []
        self.indent = indent

    def export(self, spans: list[ReadableSpan]) -> SpanExportResult:
        for s in spans:
            text = s.to_json(indent=self.indent)
            self.chunks.append(text if self.indent is not None else text.replace("\n", ""))
        return SpanExportResult.SUCCESS


def _real_sdk_spans(indent: int | None) -> str:
    exporter = _JsonLines(indent)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("halo-test", "1.2.3")
    with tracer.start_as_current_span("invoke_agent planner", attributes={"gen_ai.operation.name": "invoke_agent"}):
        with tracer.start_as_current_span("chat gpt-4o", kind=otel_trace.SpanKind.CLIENT) as llm:
            llm.set_attribute("gen_ai.request.model", "gpt-4o")
            llm.set_attribute("gen_ai.usage.input_tokens", 12)
        try:
            with tracer.start_as_current_span("execute_tool search") as tool:
                tool.set_attribute("gen_ai.tool.name", "search")
                raise RuntimeError("index offline")
        except RuntimeError:
            pass
    provider.shutdown()
    return ("\n" if indent is None else "\n").join(exporter.chunks) + "\n"


def test_real_sdk_to_json_jsonl_and_pretty(tmp_path: Path) -> None:
    jsonl = tmp_path / "spans.jsonl"
    jsonl.write_text(_real_sdk_spans(None))
    pretty = tmp_path / "console.json"
    pretty.write_text(_real_sdk_spans(4))
    for path in (jsonl, pretty):
        assert detect_format(path) == "otel_sdk"
        problems = Problems()
        spans = list(iter_spans([path], problems))
        assert problems.skipped_total == 0
        by_name = {s["name"]: s for s in spans}
        assert set(by_name) == {"invoke_agent planner", "chat gpt-4o", "execute_tool search"}
        root = by_name["invoke_agent planner"]
        assert root["parent_span_id"] == ""
        assert by_name["chat gpt-4o"]["parent_span_id"] == root["span_id"]
        assert by_name["chat gpt-4o"]["kind"] == "SPAN_KIND_CLIENT"
        tool = by_name["execute_tool search"]
        assert tool["status"] == {"code": STATUS_ERROR, "message": "RuntimeError: index offline"}
        assert tool["attributes"]["exception.type"] == "RuntimeError"
        assert root["resource"]["attributes"]["telemetry.sdk.name"] == "opentelemetry"
        assert normalize(tool).tool_name == "search" and normalize(tool).is_error


def test_bad_sdk_input(tmp_path: Path) -> None:
    good = {"name": "ok", "context": {"trace_id": "0x" + "a" * 32, "span_id": "0x" + "b" * 16},
            "kind": "SpanKind.INTERNAL", "parent_id": None, "start_time": "2025-01-01T00:00:00.000001Z",
            "end_time": "2025-01-01T00:00:01Z", "status": {"status_code": "StatusCode.OK"}, "attributes": {}}
    lines = [
        json.dumps(good),
        '{"name": "cut", "context": {"trace_id": ',
        json.dumps({**good, "context": {"span_id": 5}}),
        json.dumps({**good, "start_time": None}),
        json.dumps({**good, "attributes": {"big": 2**100}, "status": "error"}),
    ]
    path = tmp_path / "sdk.jsonl"
    path.write_text("\n".join(lines) + "\n")
    problems = Problems()
    spans = list(iter_spans([path], problems))
    assert problems.skipped == {"malformed_json": 1, "missing_trace_id": 1, "bad_timestamp": 1}
    assert f"{path}:2: malformed_json" in problems.examples[0]
    assert len(spans) == 2
    assert spans[0]["status"]["code"] == "STATUS_CODE_OK" and spans[0]["start_time"].endswith(".000001000Z")
    assert spans[1]["attributes"]["big"] == str(2**100) and spans[1]["status"]["code"] == STATUS_ERROR


def test_any_agent_normalized_view_matches_raw_attributes(corpora: Path) -> None:
    """Over all 572 clean spans, the normalized view agrees with what the raw attributes say, dialect by dialect."""
    d = corpora / "any-agent-otel"
    op_to_cat = {"call_llm": "llm", "execute_tool": "tool", "invoke_agent": "agent"}
    checked: Counter[str] = Counter()
    for path in sorted(d.glob("*.json")):
        if path.name in CONFLICTED:
            continue
        raw_spans = json.loads(path.read_text())["spans"]
        spans = list(iter_spans([path], Problems()))
        assert len(spans) == len(raw_spans)
        for raw, span in zip(raw_spans, spans, strict=True):
            a, n = raw["attributes"], normalize(span)
            op, oi = a.get("gen_ai.operation.name"), a.get("openinference.span.kind")
            if oi:
                expected = {"LLM": "llm", "TOOL": "tool", "AGENT": "agent", "CHAIN": "chain"}[oi]
            elif op:
                expected = op_to_cat[op]
            else:
                continue
            assert n.category == expected, (path.name, raw["name"])
            checked[expected] += 1
            if expected == "tool":
                assert n.tool_name == (a.get("gen_ai.tool.name") or a.get("tool.name"))
                assert n.tool_arguments == (a.get("tool.parameters") or a.get("gen_ai.tool.args") or a.get("input.value"))
            if expected == "llm":
                assert n.model == (a.get("llm.model_name") or a.get("gen_ai.response.model") or a.get("gen_ai.request.model"))
                assert n.input_tokens == (a.get("llm.token_count.prompt") or a.get("gen_ai.usage.input_tokens"))
                out = a.get("gen_ai.output")
                if a.get("gen_ai.output.type") == "json" and isinstance(out, str) and out.startswith("[{"):
                    asked = [c["tool.name"] for c in json.loads(out)]
                    assert [c.name for c in n.tool_calls_requested] == asked
                    checked["llm_with_calls"] += 1
    # Spans that name their kind (gen_ai.operation.name or openinference.span.kind), counted from the raw
    # files; the 3 remaining spans name neither and are not checked.
    assert checked == {"llm": 261, "tool": 176, "agent": 80, "chain": 52, "llm_with_calls": 172}
