"""The typed fast path for canonical JSONL (``fast_scan``) changes nothing: same findings.json as the dict path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from engine.analysis import fast_scan, source
from engine.analysis.canonical_line import line_span
from engine.run import run_analysis
from engine.traces import ingest
from engine.traces.normalize import (
    AGENT_NAME_KEYS,
    FINISH_REASON_KEYS,
    MODEL_KEYS,
    OUTPUT_TOKEN_KEYS,
    TOOL_ARGS_KEYS,
    TOOL_RESULT_KEYS,
)
from engine.traces.projection import covers

GEN = Path(__file__).resolve().parents[2] / "data" / "gen_traces.py"


def _findings(paths: list[Path], out: Path, fast: bool, monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setattr(source, "FAST_JSONL", fast)
    run_analysis(paths, out)
    return (out / "findings.json").read_bytes()


def _same_both_ways(paths: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    fast = _findings(paths, tmp_path / "fast", True, monkeypatch)
    slow = _findings(paths, tmp_path / "slow", False, monkeypatch)
    assert fast == slow  # findings.json carries no timings: byte-identical
    return orjson.loads(fast)


def _generated(tmp_path: Path, *flags: str) -> Path:
    if not GEN.is_file():
        pytest.skip(f"{GEN} not present")
    out = tmp_path / "gen.jsonl"
    subprocess.run([sys.executable, str(GEN), "--spans", "3000", "--out", str(out), *flags], check=True,
                   capture_output=True)
    return out


def test_projection_declares_every_key_of_the_tables_it_reads() -> None:
    for table in (MODEL_KEYS, OUTPUT_TOKEN_KEYS, TOOL_ARGS_KEYS, TOOL_RESULT_KEYS, FINISH_REASON_KEYS, AGENT_NAME_KEYS):
        assert covers(table), table


@pytest.mark.parametrize("flags", [(), ("--interleave",)], ids=["contiguous", "interleaved"])
def test_generated_traces_same_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: tuple) -> None:
    data = _same_both_ways([_generated(tmp_path, *flags)], tmp_path, monkeypatch)
    assert data["dataset"]["spans"] == 3000 and data["failure_modes"]


def test_tau_bench_converted_to_canonical_same_findings(
    corpora: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = corpora / "tau-bench-airline" / "gpt-4o-airline.json"
    if not src.is_file():
        pytest.skip(f"{src} not present")
    canonical = tmp_path / "tau.jsonl"
    ingest.convert([src], canonical)
    data = _same_both_ways([canonical], tmp_path, monkeypatch)
    assert data["failure_modes"]


def _span(i: int, **attrs: object) -> dict:
    return {
        "trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}", "parent_span_id": "", "trace_state": "",
        "name": "function.lookup", "kind": "SPAN_KIND_INTERNAL",
        "start_time": "2025-06-01T00:00:00.000000000Z", "end_time": "2025-06-01T00:00:00.250000000Z",
        "status": {"code": "STATUS_CODE_OK", "message": ""}, "resource": {"attributes": {}},
        "scope": {"name": "", "version": ""},
        "attributes": {"openinference.span.kind": "TOOL", "tool.name": "lookup", "input.value": "{}", **attrs},
    }


def test_odd_lines_fall_back_and_count_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrong-typed attributes, invalid UTF-8, repairable and broken records: fallback, identical tally."""
    lines = [orjson.dumps(_span(i, **{"output.value": "Error: record locked"})) for i in range(4)]
    lines.append(orjson.dumps(_span(10, **{"output.value": {"error": "not a string"}})))  # wrong type: fallback
    lines.append(orjson.dumps(_span(11, **{"inference.llm.output_tokens": 1.5})))  # float where int declared
    lines.append(orjson.dumps(_span(12, **{"tool.name": 7})))
    bad_utf8 = orjson.dumps(_span(13, **{"unused.key": "xx"})).replace(b"xx", b"\xff\xfe")
    lines.append(bad_utf8)  # msgspec would skip the unused value unchecked; orjson refuses the line
    repaired = _span(14)
    repaired["trace_id"] = 15  # coerced by canonicalize_record (a repair)
    lines.append(orjson.dumps(repaired))
    lines += [b"{broken", b'{"trace_id": 5}', b"", b"[1, 2]"]
    for i, status in enumerate([  # statuses other than the plain byte-for-byte ones: decoded, or the dict path
        {"message": "", "code": "STATUS_CODE_OK"}, {"code": "STATUS_CODE_ERROR", "message": "boom"},
        {"code": 2}, "STATUS_CODE_ERROR", None,
    ]):
        odd = _span(20 + i, **{"output.value": "fine"})
        odd["status"] = status
        lines.append(orjson.dumps(odd))
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    fell_back: list[int] = []

    def spy(line: bytes, p: Path, lineno: int, problems: object) -> object:
        fell_back.append(lineno)
        return line_span(line, p, lineno, problems)  # type: ignore[arg-type]

    monkeypatch.setattr(fast_scan, "line_span", spy)
    data = _same_both_ways([path], tmp_path, monkeypatch)
    assert {5, 6, 7, 8, 9} <= set(fell_back)  # wrong types, bad UTF-8, a repairable id: the orjson path
    assert data["dataset"]["spans"] == 13
    assert data["dataset"]["skipped_by_reason"] == {"malformed_json": 2, "missing_span_id": 1, "not_an_object": 1}
    assert data["dataset"]["repaired_by_reason"] == {"id_coerced": 1}
