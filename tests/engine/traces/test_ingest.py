"""Ingest: format detection (gzip-transparent), canonical reading with bad input, convert round trip."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson

from engine.traces import conventions
from engine.traces.formats.canonical import canonicalize_record
from engine.traces.formats.common import MAX_VALUE_CHARS
from engine.traces.ingest import FORMATS, NOT_TRACE_DATA, IngestStats, convert, detect_format, iter_spans
from engine.traces.problems import Problems
from engine.traces.span import make_span


def _span(i: int, **attrs) -> dict:
    return make_span(
        trace_id=f"{i + 1:032x}",
        span_id=f"{i + 1:016x}",
        name=f"s{i}",
        start_ns=1_700_000_000_000_000_000 + i,
        end_ns=1_700_000_000_000_000_100 + i,
        attributes=attrs,
    )


def _read(out: Path) -> list[dict]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_canonical_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    good = [orjson.dumps(_span(i, k="v")) for i in range(3)]
    huge = orjson.dumps(_span(9, blob="x" * (50 * 1024 * 1024)))
    lines = [
        good[0],
        b'{"trace_id": "ab", "span_id": ',  # truncated
        b"[1, 2]",
        orjson.dumps({**_span(4), "trace_id": ""}),
        orjson.dumps({**_span(5), "span_id": None}),
        orjson.dumps({**_span(6), "start_time": "yesterday"}),
        good[1].replace(b'"s1"', b'"s\xff1"'),  # invalid UTF-8 inside a string: repaired
        orjson.dumps({**_span(7), "trace_id": 12345, "span_id": "0xABC", "kind": 3, "status": "error",
                      "end_time": "2000-01-01T00:00:00Z", "attributes": None}),
        b"",
        huge,
        good[2],
    ]
    path = tmp_path / "spans.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert detect_format(path) == "canonical"
    out = tmp_path / "out.jsonl"
    stats = convert([path], out)
    spans = _read(out)
    assert [s["name"] for s in spans] == ["s0", "s\ufffd1", "s7", "s9", "s2"]
    assert stats.problems.skipped == {
        "malformed_json": 1,
        "not_an_object": 1,
        "missing_trace_id": 1,
        "missing_span_id": 1,
        "bad_timestamp": 1,
    }
    assert stats.problems.repaired["invalid_utf8"] == 1
    assert stats.problems.repaired["value_capped"] == 1
    assert f"{path}:2: malformed_json" in stats.problems.examples[0]
    coerced = spans[2]
    assert coerced["trace_id"] == f"{12345:032x}" and coerced["span_id"] == f"{0xABC:016x}"
    assert (coerced["kind"], coerced["status"]["code"]) == ("SPAN_KIND_CLIENT", "STATUS_CODE_ERROR")
    assert coerced["end_time"] == coerced["start_time"]  # end before start repaired
    assert "end_before_start" in coerced["attributes"][conventions.REPAIRED]
    capped = spans[3]["attributes"]
    assert len(capped["blob"]) <= MAX_VALUE_CHARS and capped[conventions.TRUNCATED_KEYS] == ["blob"]
    assert stats.files[0].spans == 5


def test_canonicalize_record_keeps_links_for_non_otel_ids() -> None:
    parent, reason, repairs = canonicalize_record({**_span(1), "span_id": "step-one"})
    child, _, _ = canonicalize_record({**_span(2), "parent_span_id": "step-one"})
    assert reason == "" and "non_otel_id" in repairs
    assert child["parent_span_id"] == parent["span_id"] and len(parent["span_id"]) == 16
    assert parent["attributes"][conventions.ORIGINAL_SPAN_ID] == "step-one"
    assert canonicalize_record("nope") == (None, "not_an_object", [])
    clean, reason, repairs = canonicalize_record(_span(3, a=1))
    assert clean == _span(3, a=1) and repairs == []


def test_gzip_and_missing_files(tmp_path: Path) -> None:
    payload = b"\n".join(orjson.dumps(_span(i)) for i in range(4)) + b"\n"
    gz = tmp_path / "spans.jsonl.gz"
    gz.write_bytes(gzip.compress(payload))
    disguised = tmp_path / "spans_no_suffix.jsonl"
    disguised.write_bytes(gzip.compress(payload))  # gzip by magic bytes, not by name
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(payload)[:-12])
    corrupt = tmp_path / "corrupt.jsonl.gz"
    good = bytearray(gzip.compress(payload))
    good[20] ^= 0xFF  # a flipped bit inside the deflate stream: zlib.error, not OSError
    corrupt.write_bytes(bytes(good))
    assert detect_format(gz) == detect_format(disguised) == "canonical"
    stats = IngestStats()
    files = [gz, disguised, tmp_path / "absent.jsonl", truncated, corrupt]
    spans = list(iter_spans(files, stats.problems, stats=stats))
    assert len(spans) >= 8
    assert [f.spans for f in stats.files][:2] == [4, 4]
    assert stats.problems.skipped["unreadable_file"] == 3  # missing, truncated gzip, corrupt gzip
    assert stats.files[2].skipped == {"unreadable_file": 1}
    d = orjson.loads(orjson.dumps(stats.to_dict()))
    assert d["spans"] == len(spans) and d["files"][2]["skipped"] == {"unreadable_file": 1}
    assert d["problems"]["skipped"]["unreadable_file"] == 3


def test_convert_round_trip_every_corpus(corpora: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    stats = convert([corpora], out)
    first = _read(out)
    assert len(first) == stats.spans
    again = tmp_path / "again.jsonl"
    stats2 = convert([out], again)
    assert stats2.problems.skipped_total == 0 and not stats2.problems.repaired
    assert out.read_bytes() == again.read_bytes()
    assert list(first[0]) == list(_span(0))  # key order as make_span writes it
    assert {f.format for f in stats.files} <= set(FORMATS)


def test_unknown_format_override_is_counted(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_bytes(orjson.dumps(_span(0)) + b"\n")
    problems = Problems()
    assert list(iter_spans([p], problems, formats={str(p): "nope"})) == []
    assert problems.skipped == {"unknown_format": 1}


def test_no_format_raises_on_junk(tmp_path: Path) -> None:
    """Every converter, forced onto every kind of junk, counts problems instead of raising."""
    junk = {
        "empty.json": b"",
        "null.json": b"null",
        "list.json": b"[]",
        "obj.json": b"{}",
        "nums.jsonl": b"1\n2\n",
        "binary.bin": bytes(range(256)) * 4,
        "deep.json": b"[" * 5000 + b"]" * 5000,
        "halfdoc.json": b'{"spans": [{"name": "x", "context": {"trace_id": 1',
        "wrongtypes.jsonl": b'{"trace_id": [], "span_id": {}, "start_time": [1], "status": 5, "attributes": 3}\n'
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5, "spanId": null}]}]}]}\n'
        b'{"object": "trace.span", "id": 3, "trace_id": {}, "started_at": [], "span_data": "x", "error": 1}\n'
        b'{"data": [{"id": 1, "traceId": 2, "startTime": {}, "usage": "x", "input": null}]}\n'
        b'[{"task_id": 1, "traj": "nope"}, {"traj": [{"role": "assistant", "tool_calls": "x"}]}]\n',
        "gz_garbage.gz": b"\x1f\x8b" + b"\x00" * 30,
    }
    paths = []
    for name, data in junk.items():
        p = tmp_path / name
        p.write_bytes(data)
        paths.append(p)
    for fmt in FORMATS:
        problems = Problems()
        spans = list(iter_spans(paths, problems, formats={str(p): fmt for p in paths}))
        for s in spans:
            assert list(s) == list(_span(0)) and len(s["trace_id"]) == 32 and len(s["span_id"]) == 16
        assert "converter_error" not in problems.skipped, (fmt, problems.examples)
        assert problems.skipped_total > 0
    # detection itself never raises either
    assert {detect_format(p) for p in paths} <= {*FORMATS, NOT_TRACE_DATA}


def test_canonical_json_array(tmp_path: Path) -> None:
    p = tmp_path / "spans.json"
    p.write_bytes(orjson.dumps([_span(0), "junk", _span(1)]))
    assert detect_format(p) == "canonical"
    problems = Problems()
    assert [s["name"] for s in iter_spans([p], problems)] == ["s0", "s1"]
    assert problems.skipped == {"not_an_object": 1}


def test_values_orjson_refuses(tmp_path: Path) -> None:
    """Ints beyond 64 bits (the OTel SDK writes ids so) in a canonical line or an OTLP intValue survive convert."""
    big = 2**100
    canon = tmp_path / "c.jsonl"
    canon.write_bytes(orjson.dumps(_span(0)).replace(b'"attributes":{}', b'"attributes":{"n":%d}' % big) + b"\n")
    otlp = tmp_path / "o.json"
    otlp.write_bytes(orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "a" * 32, "spanId": "b" * 16, "name": "x", "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000000000001", "attributes": [{"key": "n", "value": {"intValue": str(big)}}],
    }]}]}]}))
    out = tmp_path / "out.jsonl"
    stats = convert([canon, otlp], out)
    assert stats.problems.skipped_total == 0
    canon_n, otlp_n = (s["attributes"]["n"] for s in _read(out))
    assert canon_n == float(big)  # orjson reads ints beyond 64 bits as floats: kept, not dropped
    assert otlp_n == str(big)  # an OTLP intValue is a decimal string: kept exactly
