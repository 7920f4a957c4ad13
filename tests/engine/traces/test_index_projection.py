"""The index's typed decode (``index_projection``) gives exactly what the orjson path gives.

Three levels: ``rollup_of`` vs ``normalize.rollup`` per span (real corpora, every key of every
table); whole indexes built with the typed path vs with it disabled (generated and bad-input
files); and lines that do not fit the types falling back with identical results.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from index_testdata import span_line
from test_bad_input import _lines as bad_lines

from engine.traces import canonical_reader, index_projection, normalize
from engine.traces.index import TraceIndex
from engine.traces.ingest import convert
from engine.traces.span import STATUS_ERROR

GEN = Path(__file__).resolve().parents[2] / "data" / "gen_traces.py"
T1 = "1" * 32


def _typed_rollup(line: bytes) -> tuple[Any, ...] | None:
    """``normalize.rollup``'s tuple computed from the Struct, or None when the line does not fit.

    When the primary keys settle it (``quick_rollup``), that answer must agree with the full one.
    """
    try:
        v = index_projection.decode(line)
    except index_projection.DECODE_ERRORS:
        return None
    full = (*index_projection.rollup_of(v.attributes, v.name), v.status.code == STATUS_ERROR)
    try:
        q = index_projection.decode_primary(line)
    except index_projection.DECODE_ERRORS:
        return full
    quick = index_projection.quick_rollup(q.attributes, q.name)
    if quick is not None:
        assert (*quick, q.status.code == STATUS_ERROR) == full, line[:300]
    return full


def _state(idx: TraceIndex) -> tuple[Any, ...]:
    """Everything that defines an index (vocabulary bits resolved to names)."""
    st = idx.state

    def names(mask: int) -> list[str]:
        return sorted(v for i, v in enumerate(st.vocab) if mask >> i & 1)

    rows = [[*r[: canonical_reader.M_MODEL], *(names(r[m]) for m in canonical_reader.FACET_SLOTS.values()), *r[canonical_reader.NODEID :]] for r in idx.rows]
    return (
        *(list(getattr(st, a)) for a in ("off", "ln", "tr", "sid", "pid", "gaps")),
        st.tids,
        rows,
        [list(a) for a in st.tspans],
        sorted(st.slow),
        sorted(idx.broken),
        dict(idx.problems.skipped),
        dict(idx.problems.repaired),
        list(idx.problems.examples),
        idx.end,
        idx.lineno,
    )


def _untyped(line: bytes) -> Any:
    raise ValueError("typed path disabled")


def _both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    fast = _state(TraceIndex.build(path))
    with monkeypatch.context() as m:
        m.setattr(index_projection, "decode", _untyped)
        slow = _state(TraceIndex.build(path))
    return fast, slow


@pytest.fixture(scope="module")
def corpus_file(corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpora") / "all.jsonl"
    convert([corpora], out)
    return out


def test_rollup_twin_matches_normalize_on_every_corpus_span(corpus_file: Path) -> None:
    typed = 0
    lines = corpus_file.read_bytes().splitlines(keepends=True)
    for line in lines:
        got = _typed_rollup(line)
        if got is not None:
            typed += 1
            assert got == normalize.rollup(orjson.loads(line)), line[:300]
    assert typed > 0.9 * len(lines)


def test_corpus_index_identical_with_and_without_typed_path(
    corpus_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = _both(corpus_file, monkeypatch)
    assert fast == slow


@pytest.mark.parametrize(
    "table",
    [normalize.MODEL_KEYS, normalize.INPUT_TOKEN_KEYS, normalize.OUTPUT_TOKEN_KEYS, normalize.TOOL_NAME_KEYS, normalize.AGENT_NAME_KEYS,
     index_projection.CATEGORY_VALUE_KEYS, index_projection.CATEGORY_PRESENCE_KEYS],
)
@pytest.mark.parametrize("kind", ["LLM", "TOOL", "AGENT", "llm", None])
@pytest.mark.parametrize("settled", [False, True])
def test_rollup_twin_matches_per_key(table: tuple[str, ...], kind: str | None, settled: bool) -> None:
    """Each key alone, with several values, and pairs (priority order) give normalize's answer.

    ``settled`` adds the primary keys that let ``quick_rollup`` answer, so both twins are exercised.
    """
    values: list[Any] = ["v", "", None, 7, "12", "x1", 0, 2.5, True, "llm", "agent", "TOOL", "execute_tool", "chat"]
    base: dict[str, Any] = {"openinference.span.kind": kind} if kind else {}
    if settled:
        base.update({normalize.MODEL_KEYS[0]: "m", normalize.TOOL_NAME_KEYS[0]: "t", normalize.AGENT_NAME_KEYS[0]: "ag"})
    cases = [{**base, k: v} for k in table for v in values]
    cases += [{**base, a: "first", b: "second"} for a in table for b in table if a != b]
    cases += [{**base, a: 3, b: 5} for a in table for b in table if a != b]
    cases.append({**base, normalize.LANGFUSE_USAGE: '{"input": 4, "output": 9}'})
    for attrs in cases:
        for name in ("execute_tool get_weather", "agent.run", "chat"):
            line = span_line(T1, "a" * 16, name=name, attributes=attrs)
            got = _typed_rollup(line)
            if got is not None:
                assert got == normalize.rollup(orjson.loads(line)), (attrs, name)


def test_every_table_key_is_declared() -> None:
    declared = set(index_projection.Attrs.__struct_encode_fields__)
    for table in (normalize.MODEL_KEYS, normalize.INPUT_TOKEN_KEYS, normalize.OUTPUT_TOKEN_KEYS, normalize.TOOL_NAME_KEYS, normalize.AGENT_NAME_KEYS):
        assert set(table) <= declared


def test_generated_interleaved_file_identical_with_and_without_typed_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not GEN.exists():
        pytest.skip(f"generator not found at {GEN}")
    out = tmp_path / "gen.jsonl"
    subprocess.run([sys.executable, str(GEN), "--spans", "3000", "--interleave", "--out", str(out)], check=True)
    fast, slow = _both(out, monkeypatch)
    assert fast == slow
    assert not fast[9]  # state.slow: no span needed coercion: the typed path took them all


def test_bad_input_file_identical_with_and_without_typed_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b"".join(line for line in bad_lines() if len(line) < 1 << 20))
    fast, slow = _both(p, monkeypatch)
    assert fast == slow


def test_wrong_typed_attribute_falls_back_and_is_indexed_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = [
        {"llm.model_name": 42, "openinference.span.kind": "LLM"},  # int where a str is declared
        {"inference.llm.input_tokens": [1, 2], "llm.token_count.prompt": 5},  # list where a number is declared
        {"llm.token_count.prompt": 777},  # made 2**70 below: beyond int64, orjson reads a float
        {"tool.name": {"x": 1}, "halo.test.nodeid": "t::a", "halo.test.outcome": "failed"},
        {"agent.name": None, "halo.test.nodeid": "t::a", "halo.test.outcome": "passed"},
    ]
    lines = [span_line(T1, "a" * 16, name="root", attributes={"llm.model_name": "m1"})]
    lines += [span_line(T1, f"{i + 1:016x}", "a" * 16, name="execute_tool t", attributes=a) for i, a in enumerate(odd)]
    lines[3] = lines[3].replace(b":777", f":{2**70}".encode())
    lines.append(span_line(T1, "f" * 16, "a" * 16, name="plain", kind="SPAN_KIND_SERVER"))
    p = tmp_path / "odd.jsonl"
    p.write_bytes(b"".join(lines))
    for line in lines[1:5]:
        assert _typed_rollup(line) is None  # these really take the fallback
    fast, slow = _both(p, monkeypatch)
    assert fast == slow
    idx = TraceIndex.build(p)
    assert idx.span_count == len(lines) and not idx.state.slow
    row = idx.row(0)
    assert row[canonical_reader.TIN] == 5 + 2**70 and row[canonical_reader.NODEID] == "t::a" and row[canonical_reader.OUTCOME] == "failed"


def test_invalid_utf8_in_a_skipped_value_is_repaired_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """msgspec does not look inside skipped values; the scan's UTF-8 guard keeps orjson's verdict."""
    bad = span_line(T1, "b" * 16, "a" * 16, attributes={"blob": "xx"}).replace(b'"xx"', b'"\xff\xfe"')
    p = tmp_path / "u.jsonl"
    p.write_bytes(span_line(T1, "a" * 16) + bad)
    fast, slow = _both(p, monkeypatch)
    assert fast == slow
    assert fast[12] == {"invalid_utf8": 1}  # problems.repaired


def test_minute_epoch_matches_strptime() -> None:
    """The per-trace time conversion's fast minute parser agrees with ``timegm(strptime(...))``, errors included."""
    import calendar
    import random
    import time

    def verdict(f: Any, m: str) -> Any:
        try:
            return f(m)
        except ValueError:
            return "error"

    def ref(m: str) -> int:
        return calendar.timegm(time.strptime(m, "%Y-%m-%dT%H:%M"))

    rng = random.Random(5)
    cases = ["2025-06-01T00:00", "0000-01-01T00:00", "2024-02-29T23:59", "2025-02-29T00:00", "2025-06-01t00:00",
             "2025-6-01T00:00x", "2025-06-01T0 :00", "1969-12-31T23:59", "\uff12025-06-01T00:0"]  # fmt: skip
    cases += [
        f"{rng.randint(0, 9999):04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}T{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}"
        for _ in range(3000)
    ]
    for m in cases:
        assert verdict(canonical_reader.minute_epoch, m) == verdict(ref, m), m


def test_odd_id_spellings_indexed_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids parsed as bytes on the typed path: case, prefixes, spaces and self-parents agree with ``int(x, 16)``."""
    lines = [
        span_line(T1, "aaaaaaaaaaaaaaaa", name="root"),
        span_line(T1, "ABCDEF0123456789", "aaaaaaaaaaaaaaaa"),  # upper case: same id as lower
        span_line(T1, "0x00000000000abc", "ABCDEF0123456789"),  # int() takes a 0x prefix, fromhex does not
        span_line(T1, "0011223344 55667", "aaaaaaaaaaaaaaaa"),  # fromhex skips spaces, int() refuses
        span_line(T1, "bbbbbbbbbbbbbbbb", "BBBBBBBBBBBBBBBB"),  # self-parent in another case
        span_line(T1, "0000000000000000"),  # id 0 with no parent: equal to "no parent"
        span_line(T1, "cccccccccccccccc", "aaaaaaaaaaaaaaa"),  # 15-char parent
        span_line(T1, "dddddddddddddddd", "+aaaaaaaaaaaaaaa"),
    ]
    p = tmp_path / "ids.jsonl"
    p.write_bytes(b"".join(lines))
    fast, slow = _both(p, monkeypatch)
    assert fast == slow
