"""Bad input never aborts the index: each case is skipped or repaired, counted by reason, neighbours survive."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from index_testdata import span_line

from engine.traces import canonical_reader
from engine.traces.index import TraceIndex
from engine.traces.store import TraceStore

T1, T2, T3, T4, T5, T6, T7 = (c * 32 for c in "1234567")
BIG = 50 * 1024 * 1024


def _lines() -> list[bytes]:
    """(line content) in file order; comments give the expected outcome."""
    return [
        span_line(T1, "a" * 16, name="root"),  # 1 kept
        b'{"trace_id": "oops", \n',  # 2 malformed_json
        span_line(T1, "b" * 16, "a" * 16, name="child"),  # 3 kept
        b"[1, 2, 3]\n",  # 4 not_an_object
        b'"just a string"\n',  # 5 not_an_object
        span_line(T1, "c" * 16, "a" * 16, name="utf8").replace(b'"utf8"', b'"utf8 \xff\xfe"'),  # 6 invalid_utf8
        span_line(T1, "d" * 16, "a" * 16, start_time=[1]),  # 7 bad_timestamp
        b"\n",  # 8 blank: ignored, not counted
        orjson.dumps({"span_id": "e" * 16, "start_time": "x"}) + b"\n",  # 9 missing_trace_id
        orjson.dumps({"trace_id": T1, "start_time": "2025-06-01T00:00:00Z"}) + b"\n",  # 10 missing_span_id
        span_line(T1, "a" * 16, name="dup of root"),  # 11 duplicate_span
        span_line(T2, "1" * 16, "f" * 16, name="orphan"),  # 12 orphan_span (kept)
        span_line(T3, "1" * 16, name="r"),  # 13 kept
        span_line(T3, "2" * 16, "3" * 16, name="cyc-a"),  # 14 parent_cycle (cut here)
        span_line(T3, "3" * 16, "2" * 16, name="cyc-b"),  # 15 kept
        span_line(T4, "4" * 16, "4" * 16, name="self"),  # 16 parent_cycle (self-parent)
        span_line(
            T5,
            "5" * 16,
            name="skew",
            start_time="2025-06-01T00:00:05.000000000Z",
            end_time="2025-06-01T00:00:01.000000000Z",
        ),  # 17 end_before_start
        span_line(T6, "6" * 16, name="big", attributes={"blob": "x" * BIG}),  # 18 kept (50 MB)
        span_line(T6, "7" * 16, "6" * 16, name="attrs", attributes="not a dict"),  # 19 bad_attributes
        span_line(T7, "8" * 16, name="lower", status={"code": "error", "message": "boom"}),  # 20 kept, error
        span_line(T7, "9" * 16, "8" * 16, trace_id=12345),  # 21 id_coerced (int id → hex); orphan there
        span_line(T7, "a" * 16, "8" * 16, name="cut")[:-30],  # 22 truncated_line (no newline)
    ]


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("bad") / "bad.jsonl"
    p.write_bytes(b"".join(_lines()))
    return p


@pytest.fixture(scope="module")
def bad_index(bad_file: Path) -> TraceIndex:
    return TraceIndex.build(bad_file)


def test_every_bad_line_is_counted_by_reason(bad_index: TraceIndex) -> None:
    assert dict(bad_index.problems.skipped) == {
        "malformed_json": 1,
        "not_an_object": 2,
        "bad_timestamp": 1,
        "missing_trace_id": 1,
        "missing_span_id": 1,
        "duplicate_span": 1,
        "truncated_line": 1,
    }
    assert dict(bad_index.problems.repaired) == {
        "invalid_utf8": 1,
        "orphan_span": 2,
        "parent_cycle": 2,
        "end_before_start": 1,
        "bad_attributes": 1,
        "id_coerced": 1,
    }


def test_examples_name_file_and_line(bad_index: TraceIndex, bad_file: Path) -> None:
    ex = bad_index.problems.examples
    for line, reason in (
        (2, "malformed_json"),
        (4, "not_an_object"),
        (7, "bad_timestamp"),
        (11, "duplicate_span"),
        (12, "orphan_span"),
        (14, "parent_cycle"),
        (16, "parent_cycle"),
        (17, "end_before_start"),
        (22, "truncated_line"),
    ):
        assert any(e.startswith(f"{bad_file}:{line}: {reason}") for e in ex), (line, reason, ex)


def test_every_valid_span_survives(bad_file: Path, tmp_path: Path) -> None:
    store = TraceStore.open(bad_file, cache_dir=tmp_path)
    names = {t: sorted(s["name"] for s in spans) for t, spans in store.iter_traces()}
    t7 = "0" * 27 + "03039"  # 12345 as a 32-hex trace id
    assert names == {
        T1: ["child", "root", "utf8 \ufffd\ufffd"],
        T2: ["orphan"],
        T3: ["cyc-a", "cyc-b", "r"],
        T4: ["self"],
        T5: ["skew"],
        T6: ["attrs", "big"],
        T7: ["lower"],
        t7: ["op"],
    }
    assert store.span_count == 13
    spans = {s["name"]: s for s in store.iter_spans()}
    assert spans["skew"]["end_time"] == spans["skew"]["start_time"]  # repaired, as counted
    assert spans["self"]["parent_span_id"] == ""
    assert spans["cyc-a"]["parent_span_id"] == "" and spans["cyc-b"]["parent_span_id"] == "2" * 16
    assert spans["attrs"]["attributes"].get("halo.repaired") == "bad_attributes"
    assert spans["root"]["name"] == "root"  # the first of the duplicates is the one kept
    assert len(spans["big"]["attributes"]["blob"]) == BIG  # kept whole; the store caps it on output
    # error status spelled in lower case still counts as an error span
    t7_row = store.indexes[0].rows[store.indexes[0].trace_ids.index(T7)]
    assert t7_row[canonical_reader.ERR] == 1


def test_clock_skew_fast_path_and_rollup_agree(bad_index: TraceIndex) -> None:
    row = bad_index.rows[bad_index.trace_ids.index(T5)]
    assert row[canonical_reader.START_NS] == row[canonical_reader.END_NS]


def test_a_file_of_only_bad_lines_yields_nothing_but_counts(tmp_path: Path) -> None:
    p = tmp_path / "junk.jsonl"
    p.write_bytes(b"nope\n\xff\xfe\n[]\n{}\n")
    idx = TraceIndex.build(p)
    assert idx.span_count == 0
    assert dict(idx.problems.skipped) == {"malformed_json": 2, "not_an_object": 1, "missing_trace_id": 1}
