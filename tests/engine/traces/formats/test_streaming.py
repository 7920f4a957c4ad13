"""Streaming document formats: the incremental (ijson) path gives byte-identical canonical JSONL and the same
stats as the whole-document path; a broken document keeps every complete item before the break and reports
one problem with file:line; memory does not follow the document's size; detection never reads it whole."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import random
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from engine.traces import ingest
from engine.traces.formats import common, stream
from engine.traces.problems import Problems

ROOT = Path(__file__).resolve().parents[4]
_spec = importlib.util.spec_from_file_location("bench_streaming", ROOT / "benchmarks" / "bench_streaming.py")
assert _spec and _spec.loader
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def convert(paths: list[Path], out: Path, monkeypatch: pytest.MonkeyPatch, streaming: bool) -> tuple[bytes, dict[str, Any]]:
    """Canonical JSONL bytes and stats, with every document streamed (limit 0) or parsed whole."""
    monkeypatch.setattr(stream, "STREAM_ABOVE", 0 if streaming else 1 << 62)
    stats = ingest.convert(paths, out)
    return out.read_bytes(), stats.to_dict()


def assert_identical(paths: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, dict[str, Any]]:
    whole = convert(paths, tmp_path / "whole.jsonl", monkeypatch, streaming=False)
    streamed = convert(paths, tmp_path / "streamed.jsonl", monkeypatch, streaming=True)
    assert whole[0], "nothing converted"
    assert streamed[0] == whole[0]
    assert streamed[1] == whole[1]
    return streamed


@pytest.mark.parametrize("corpus", ["any-agent-otel", "tau-bench-airline", "swe-agent-traj"])
def test_vendored_corpora_convert_identically(corpora: Path, corpus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, stats = assert_identical([corpora / corpus], tmp_path, monkeypatch)
    assert stats["spans"] == data.count(b"\n") > 40


def _sdk_spans(n: int) -> list[Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "agent-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("streaming.test", "1.0")
    for i in range(n):
        with tracer.start_as_current_span(f"run {i}", attributes={"openinference.span.kind": "AGENT", "i": i}):
            with tracer.start_as_current_span("chat", attributes={"llm.temperature": 0.25, "tags": ["a", "b"]}):
                pass
            try:
                with tracer.start_as_current_span("tool"):
                    raise KeyError("missing row")
            except KeyError:
                pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def _otlp_doc(rng: random.Random, n: int, start: int = 0) -> dict[str, Any]:
    return {"resourceSpans": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": f"svc-{r}"}}]},
         "scopeSpans": [{"scope": {"name": f"scope-{s}", "version": "1"},
                         "spans": [bench.otlp_span(rng, start + r * 1000 + s * 100 + i) for i in range(n)]} for s in range(2)]}
        for r in range(2)]}


def test_otlp_documents_convert_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretty, compact, concatenated, one per line, a list of documents, gzip, odd key orders, legacy names."""
    rng = random.Random(3)
    docs = [_otlp_doc(rng, 30, k * 10_000) for k in range(3)]
    files = {
        "pretty.json": json.dumps(docs[0], indent=2),
        "compact.json": json.dumps(docs[0]),
        "concatenated.json": "\n".join(json.dumps(d, indent=2) for d in docs),
        "per_line.jsonl": "\n".join(json.dumps(d) for d in docs) + "\n",
        "list.json": json.dumps(docs, indent=1),
    }
    odd = json.loads(json.dumps(docs[1]))
    rs = odd["resourceSpans"][0]
    odd["resourceSpans"][0] = {"scopeSpans": rs["scopeSpans"], "resource": rs["resource"]}  # resource last
    ss = odd["resourceSpans"][1]["scopeSpans"][0]
    odd["resourceSpans"][1]["scopeSpans"][0] = {"spans": ss["spans"], "scope": ss["scope"]}  # scope last
    legacy = {"resource_spans": [{"resource": rs["resource"], "instrumentationLibrarySpans": [
        {"instrumentationLibrary": {"name": "old"}, "spans": ss["spans"][:5]}]}]}
    files["odd_order.json"] = json.dumps(odd, indent=2)
    files["legacy_names.json"] = json.dumps(legacy)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with gzip.open(tmp_path / "pretty.json.gz", "wt") as fh:
        fh.write(files["pretty.json"])
    paths = sorted(p for p in tmp_path.iterdir() if p.name.endswith((".json", ".jsonl", ".gz")))
    _, stats = assert_identical(paths, tmp_path, monkeypatch)
    assert {f["format"] for f in stats["files"]} == {"otlp_json"}
    assert stats["spans"] == 120 * 2 + 120 * 3 * 2 + 120 + 120 + 5 + 120 * 3  # pretty+gz, concat+per_line, compact, odd, legacy, list


def test_sdk_to_json_files_convert_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real SDK's to_json() concatenated (ConsoleSpanExporter), as an array, as {"spans": []} with
    128-bit int ids met after float-mode items (re-read exactly) and 1e400."""
    spans = _sdk_spans(20)
    (tmp_path / "console.json").write_text("".join(s.to_json() + os.linesep for s in spans))
    (tmp_path / "array.json").write_text("[" + ",".join(s.to_json() for s in spans) + "]")
    rng = random.Random(5)
    records = [bench.sdk_span(rng, i) for i in range(60)]
    for rec in records[30:]:
        rec["context"]["trace_id"] = int(rec["context"]["trace_id"], 16) + 2**100
    records[40]["attributes"]["huge"] = "1e400-placeholder"
    text = json.dumps({"spans": records}, indent=2).replace('"1e400-placeholder"', "1e400")
    (tmp_path / "spans.json").write_text(text)
    (tmp_path / "single.json").write_text(json.dumps({"spans": records[:1]}))
    _, stats = assert_identical(sorted(tmp_path.glob("*.json")), tmp_path, monkeypatch)
    assert {f["format"] for f in stats["files"]} == {"otel_sdk"}
    assert stats["spans"] == 60 * 2 + 60 + 1


def test_transcript_arrays_convert_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    runs = [bench.tau_run(rng, i) for i in range(25)]
    (tmp_path / "airline-results.json").write_text(json.dumps(runs, indent=2))
    (tmp_path / "retail-wrapped.json").write_text(json.dumps({"meta": {"n": 25}, "results": runs[:7]}))
    chats = [{"id": f"c{i}", "reward": i % 2, "messages": r["traj"]} for i, r in enumerate(runs[:9])]
    (tmp_path / "chats.json").write_text(json.dumps(chats))
    (tmp_path / "one_chat.json").write_text(json.dumps([{"messages": runs[0]["traj"]}]))
    (tmp_path / "messages.json").write_text(json.dumps(runs[1]["traj"]))
    (tmp_path / "dict_chat.json").write_text(json.dumps({"messages": runs[2]["traj"], "success": True}))
    log = {"history": [{"content": f"step {i}", "role": "Orchestrator (-> WebSurfer)" if i % 2 else "WebSurfer"} for i in range(30)],
           "is_correct": False, "question": "q?", "mistake_agent": "WebSurfer", "mistake_step": "3"}
    (tmp_path / "magentic.json").write_text(json.dumps(log))
    _, stats = assert_identical(sorted(tmp_path.glob("*.json")), tmp_path, monkeypatch)
    formats = {Path(f["path"]).name: f["format"] for f in stats["files"]}
    assert formats["airline-results.json"] == "tau_bench" and formats["chats.json"] == "openai_messages"
    assert formats["magentic.json"] == "multi_agent" and formats["messages.json"] == "openai_messages"


def _truncated_case(tmp_path: Path, kind: str) -> tuple[Path, Path, int]:
    """A document of 40 items cut inside item 25, and the same document holding only items 0..24."""
    rng = random.Random(9)
    if kind == "otlp":
        items = [bench.otlp_span(rng, i) for i in range(40)]
        head, tail = '{"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "s"}, "spans": [\n', "\n]}]}]}\n"
    else:
        items = [bench.sdk_span(rng, i) for i in range(40)]
        head, tail = '{"spans": [\n', "\n]}\n"
    blobs = [json.dumps(it, indent=2) for it in items]
    full = head + ",\n".join(blobs) + tail
    cut_at = full.index(blobs[25]) + len(blobs[25]) // 2
    broken = tmp_path / f"{kind}-broken.json"
    broken.write_text(full[:cut_at])
    complete = tmp_path / f"{kind}-complete.json"
    complete.write_text(head + ",\n".join(blobs[:25]) + tail)
    return broken, complete, full[:cut_at].count("\n") + 1


@pytest.mark.parametrize("kind", ["otlp", "spans"])
def test_truncated_document_keeps_complete_items_and_reports_one_line(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken, complete, last_line = _truncated_case(tmp_path, kind)
    got, stats = convert([broken], tmp_path / "got.jsonl", monkeypatch, streaming=True)
    want, _ = convert([complete], tmp_path / "want.jsonl", monkeypatch, streaming=True)
    assert got == want and got.count(b"\n") == 25
    assert stats["problems"]["skipped"] == {"malformed_json": 1}
    assert stats["problems"]["examples"] == [f"{broken}:{last_line}: malformed_json (parse error: premature EOF)"]


def test_garbage_mid_document_is_placed_on_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(2)
    blobs = [json.dumps(bench.otlp_span(rng, i), indent=2) for i in range(300)]  # ~300 KB: the error is chunks in
    lines = ('{"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [\n' + ",\n".join(blobs)).split("\n")
    bad_line = len(lines) * 2 // 3
    lines.insert(bad_line, "  @@ not json")
    path = tmp_path / "garbage.json"
    path.write_text("\n".join(lines) + "\n]}]}]}\n")
    _, stats = convert([path], tmp_path / "out.jsonl", monkeypatch, streaming=True)
    assert stats["problems"]["skipped"] == {"malformed_json": 1}
    assert stats["problems"]["examples"] == [f"{path}:{bad_line + 1}: malformed_json (lexical error: invalid char in json text.)"]
    assert 150 < stats["spans"] < 300


@pytest.mark.parametrize(
    "content",
    [b"", b"[", b"{", b'{"resourceSpans": 5}', b"17", b'{"spans": [1, "x", null]}', b'{"resourceSpans": []} trailing',
     b"\xef\xbb\xbf" + b'{"spans": []}', b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "\xff\xfe"}]}]}]}'],
)
def test_odd_documents_never_raise(content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "odd.json"
    path.write_bytes(content)
    for fmt in ("otlp_json", "otel_sdk", "tau_bench", "openai_messages", "swe_agent", "multi_agent"):
        for streaming in (False, True):
            monkeypatch.setattr(stream, "STREAM_ABOVE", 0 if streaming else 1 << 62)
            problems = Problems()
            spans = list(ingest.iter_spans([path], problems, formats={str(path): fmt}))
            assert spans == [] and "converter_error" not in problems.skipped, (fmt, streaming, problems.to_dict())


def test_truncated_gzip_keeps_what_decompressed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(4)
    data = gzip.compress(json.dumps(_otlp_doc(rng, 200), indent=2).encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    _, stats = convert([path], tmp_path / "out.jsonl", monkeypatch, streaming=True)
    assert stats["spans"] > 100
    assert sum(stats["problems"]["skipped"].values()) == 1


def test_detection_never_reads_a_big_document_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(6)
    docs = {
        "otlp.json": json.dumps(_otlp_doc(rng, 50), indent=2),
        "spans.json": json.dumps({"spans": [bench.sdk_span(rng, i) for i in range(50)]}),
        "tau.json": json.dumps([bench.tau_run(rng, i) for i in range(20)]),
    }
    for name, text in docs.items():
        (tmp_path / name).write_text(text)

    def whole_read(path: Path) -> bytes:
        raise AssertionError(f"{path} read whole")

    monkeypatch.setattr(stream, "STREAM_ABOVE", 1000)
    monkeypatch.setattr(ingest, "read_bytes", whole_read)
    monkeypatch.setattr(common, "read_bytes", whole_read)
    assert {n: ingest.detect_format(tmp_path / n) for n in docs} == {
        "otlp.json": "otlp_json", "spans.json": "otel_sdk", "tau.json": "tau_bench"}
    stats = ingest.IngestStats()
    assert sum(1 for _ in ingest.iter_spans([tmp_path], stats.problems, stats=stats)) > 300
    assert not stats.problems.skipped


def _peak_traced(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_follow_document_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Peak Python heap while converting a 0.5 MB and a 3 MB OTLP document: the same for both when streamed."""
    rng = random.Random(8)
    sizes = {}
    for n in (1, 6):
        path = tmp_path / f"otlp{n}.json"
        with open(path, "wb") as fh:
            fh.write(b'{"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [\n')
            count = n * 500_000 // 1100
            fh.write(b",\n".join(orjson.dumps(bench.otlp_span(rng, i)) for i in range(count)))
            fh.write(b"\n]}]}]}\n")
        monkeypatch.setattr(stream, "STREAM_ABOVE", 0)
        problems = Problems()
        sizes[n] = _peak_traced(lambda p=path, pr=problems: sum(1 for _ in ingest.iter_spans([p], pr)))
        assert not problems.skipped
    assert sizes[6] < 1.5 * sizes[1] + 200_000, sizes
    assert sizes[6] < 4_000_000, sizes  # detection preview (256 KB of JSON) included


def test_jsonl_documents_keep_exact_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One document per line (the collector's file exporter): each line parsed whole, problems on the same
    lines as the whole-document path; a line too long to hold is walked incrementally."""
    rng = random.Random(12)
    lines = [json.dumps(_otlp_doc(rng, 3, k * 1000)) for k in range(12)]
    lines[4] = lines[4][: len(lines[4]) // 2]  # a torn write
    lines[7] = lines[7].replace('"traceId"', '"noTraceId"', 1)
    lines[9] = "@@@ not json"
    long_doc = json.dumps(_otlp_doc(rng, 40, 90_000))
    path = tmp_path / "collector.jsonl"
    path.write_text("\n".join(lines) + "\n\n" + long_doc + "\n")
    monkeypatch.setattr(stream, "LINE_LIMIT", len(long_doc) // 2)
    whole = convert([path], tmp_path / "whole.jsonl", monkeypatch, streaming=False)
    streamed = convert([path], tmp_path / "streamed.jsonl", monkeypatch, streaming=True)
    assert streamed[0] == whole[0] and streamed[0].count(b"\n") == 10 * 12 - 1 + 160
    for stats in (whole[1], streamed[1]):
        assert stats["problems"]["skipped"] == {"malformed_json": 2, "missing_trace_id": 1}
    places = [[e.split(": ")[0] for e in stats["problems"]["examples"]] for stats in (whole[1], streamed[1])]
    assert places[0] == places[1] == [f"{path}:5", f"{path}:8#span[0]", f"{path}:10"]


@pytest.mark.parametrize("bad", ["5", "true", '"abc"'])
def test_a_scope_whose_spans_is_not_a_list_loses_no_other_span(bad: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    good = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "ok",
            "startTimeUnixNano": "1", "endTimeUnixNano": "2"}
    path = tmp_path / "otlp.json"
    path.write_text('{"resourceSpans": [{"scopeSpans": [{"spans": ' + bad + '}, {"spans": [' + json.dumps(good) + "]}]}]}")
    for streaming in (False, True):
        monkeypatch.setattr(stream, "STREAM_ABOVE", 0 if streaming else 1 << 62)
        problems = Problems()
        spans = list(ingest.iter_spans([path], problems))
        assert [s["name"] for s in spans] == ["ok"], (streaming, problems.to_dict())
        assert problems.skipped == {"not_an_object": 1}, streaming


@pytest.mark.parametrize("bad", ["5", "true"])
def test_a_span_whose_events_is_not_a_list_loses_no_other_span(bad: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    spans = [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": f"b7ad6b716920333{i}", "name": f"ok{i}",
              "startTimeUnixNano": "1", "endTimeUnixNano": "2"} for i in (1, 2)]
    path = tmp_path / "otlp.json"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).replace(
        '"name": "ok1"', '"name": "ok1", "events": ' + bad))
    for streaming in (False, True):
        monkeypatch.setattr(stream, "STREAM_ABOVE", 0 if streaming else 1 << 62)
        problems = Problems()
        assert [s["name"] for s in ingest.iter_spans([path], problems)] == ["ok1", "ok2"], problems.to_dict()
        assert "converter_error" not in problems.skipped
