"""The index: exact rollups on generated files, cache reuse, incremental append, rebuild on rewrite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from index_testdata import brute_rollups, generate, span_line

from engine.traces import canonical_reader
from engine.traces.index import TraceIndex
from engine.traces.index_cache import default_cache_dir, index_path_for, open_index


def _names(idx: TraceIndex, mask: int) -> set[str]:
    return {v for i, v in enumerate(idx.state.vocab) if mask >> i & 1}


def _assert_matches_brute(idx: TraceIndex, path: Path) -> None:
    brute = brute_rollups(path)
    assert sorted(idx.trace_ids) == sorted(brute)
    for t, tid in enumerate(idx.trace_ids):
        row, b = idx.row(t), brute[tid]
        assert row[canonical_reader.N] == b["n"] == len(idx.spans_of(t))
        assert row[canonical_reader.ERR] == b["err"]
        assert (row[canonical_reader.TIN], row[canonical_reader.TOUT]) == (b["tin"], b["tout"])
        assert (row[canonical_reader.START_NS], row[canonical_reader.END_NS]) == (b["start"], b["end"])
        assert {c: row[canonical_reader.CAT_SLOT[c]] for c in b["cats"]} == dict(b["cats"])
        assert sum(row[canonical_reader.CAT0 : canonical_reader.CAT0 + 7]) == b["n"]
        assert _names(idx, row[canonical_reader.M_MODEL]) == b["models"]
        assert _names(idx, row[canonical_reader.M_AGENT]) == b["agents"]
        assert _names(idx, row[canonical_reader.M_TOOL]) == b["tools"]
        assert _names(idx, row[canonical_reader.M_SERVICE]) == b["services"]


def _state(idx: TraceIndex) -> tuple:
    """Everything that defines an index, for equality checks between build paths."""
    st = idx.state
    return (
        list(st.off),
        list(st.ln),
        list(st.tr),
        list(st.sid),
        list(st.pid),
        st.tids,
        [[*r[: canonical_reader.M_MODEL], *(sorted(_names(idx, r[m])) for m in (7, 8, 9, 10)), *r[canonical_reader.NODEID :]] for r in idx.rows],
        [list(a) for a in st.tspans],
        sorted(st.slow),
        sorted(idx.broken),
        dict(idx.problems.skipped),
        dict(idx.problems.repaired),
        idx.end,
        idx.lineno,
    )


@pytest.fixture(scope="module")
def gen2000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("gen") / "t.jsonl", 2000)


def test_build_exact_counts(gen2000: Path) -> None:
    idx = TraceIndex.build(gen2000)
    assert idx.span_count == 2000
    assert idx.end == gen2000.stat().st_size and idx.complete
    _assert_matches_brute(idx, gen2000)
    # the generator cuts the last trace at --spans: its children lose their root (counted, kept)
    last = idx.rows[-1]
    assert idx.problems.repaired["orphan_span"] == last[canonical_reader.ORPHANS] == last[canonical_reader.N]
    assert not idx.problems.skipped
    # span arrays are in file order and point at whole lines
    data = gen2000.read_bytes()
    for i in (0, 1, 999, 1999):
        line = data[idx.state.off[i] : idx.state.off[i] + idx.state.ln[i]]
        assert line.startswith(b"{") and line.endswith(b"}\n")
    assert list(idx.state.off) == sorted(idx.state.off)


def test_interleaved_file_gives_the_same_rollups(tmp_path: Path, gen2000: Path) -> None:
    inter = generate(tmp_path / "i.jsonl", 2000, interleave=True)
    a, b = TraceIndex.build(gen2000), TraceIndex.build(inter)
    _assert_matches_brute(b, inter)

    def facts(idx: TraceIndex) -> dict[str, tuple]:
        masks = (canonical_reader.M_MODEL, canonical_reader.M_AGENT, canonical_reader.M_SERVICE, canonical_reader.M_TOOL)
        return {
            tid: (
                [v for k, v in enumerate(r) if k not in masks],
                [sorted(_names(idx, r[m])) for m in masks],
            )
            for tid, r in zip(idx.trace_ids, idx.rows, strict=True)
        }

    assert facts(a) == facts(b)
    # non-contiguous traces still list their spans in file order
    assert all(list(s) == sorted(s) for s in b.state.tspans)


def test_cache_reuse_incremental_and_rebuild(tmp_path: Path) -> None:
    src = generate(tmp_path / "a.jsonl", 2000)
    extra = generate(tmp_path / "b.jsonl", 40, seed=99).read_bytes()  # 2% appended, new traces
    cache = tmp_path / "cache"
    idx, how = open_index(src, cache)
    assert how == "cold"
    meta = index_path_for(str(src.resolve()), cache)
    files = sorted(p.name for p in (cache / "index").iterdir())
    assert meta.name in files and len(files) == 7  # meta + one file per span array + the content index
    assert all(f.startswith(meta.stem) for f in files)
    assert not any(p.name.endswith((".idx", ".tmp")) for p in src.parent.iterdir())  # nothing beside the file

    idx2, how = open_index(src, cache)
    assert how == "warm" and _state(idx2) == _state(idx)

    with open(src, "ab") as fh:
        fh.write(extra)
    idx3, how = open_index(src, cache)
    assert how == "incremental"
    cold = TraceIndex.build(src)
    assert _state(idx3) == _state(cold)
    assert open_index(src, cache)[1] == "warm"

    # rewritten in place (same size, different bytes): rebuilt, not reused
    data = bytearray(src.read_bytes())
    data[10:14] = b"ffff" if data[10:14] != b"ffff" else b"eeee"
    src.write_bytes(bytes(data))
    idx4, how = open_index(src, cache)
    assert how == "cold" and _state(idx4) == _state(TraceIndex.build(src))
    assert len(list((cache / "index").iterdir())) == 7  # the old generation's arrays are gone

    # shrunk: rebuilt
    src.write_bytes(bytes(data[: len(data) // 2].rsplit(b"\n", 1)[0] + b"\n"))
    idx5, how = open_index(src, cache)
    assert how == "cold" and idx5.span_count < idx4.span_count


def test_append_touching_old_traces_equals_cold(tmp_path: Path) -> None:
    """Appended spans that complete an old trace (its missing root) or duplicate an old span."""
    src = tmp_path / "a.jsonl"
    tid = "a" * 32
    src.write_bytes(span_line(tid, "1" * 16, "2" * 16) + span_line(tid, "3" * 16, "2" * 16))
    cache = tmp_path / "c"
    idx, _ = open_index(src, cache)
    assert idx.problems.repaired["orphan_span"] == 2
    with open(src, "ab") as fh:
        fh.write(span_line(tid, "2" * 16))  # the root arrives: no more orphans
        fh.write(span_line(tid, "1" * 16, "2" * 16, name="dup"))  # duplicate of the first span
    idx2, how = open_index(src, cache)
    assert how == "incremental"
    assert _state(idx2) == _state(TraceIndex.build(src))
    assert "orphan_span" not in idx2.problems.repaired
    assert idx2.problems.skipped["duplicate_span"] == 1
    assert idx2.rows[0][canonical_reader.N] == 3


def test_unterminated_last_line_is_not_extended_blindly(tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl"
    whole = span_line("b" * 32, "1" * 16) + span_line("b" * 32, "2" * 16, "1" * 16)
    src.write_bytes(whole[:-20])  # a writer is mid-line
    cache = tmp_path / "c"
    idx, _ = open_index(src, cache)
    assert idx.span_count == 1 and idx.problems.skipped["truncated_line"] == 1
    src.write_bytes(whole)  # the line completes
    idx2, how = open_index(src, cache)
    assert how == "cold" and idx2.span_count == 2 and not idx2.problems.skipped


def test_corrupt_cache_is_rebuilt_silently(tmp_path: Path, gen2000: Path) -> None:
    src = tmp_path / "t.jsonl"
    shutil.copy(gen2000, src)
    cache = tmp_path / "c"
    idx, _ = open_index(src, cache)
    target = index_path_for(str(src.resolve()), cache)
    for junk in (b"", b"garbage", target.read_bytes()[:5000]):
        target.write_bytes(junk)
        idx2, how = open_index(src, cache)
        assert how == "cold" and _state(idx2) == _state(idx)


def test_cache_is_keyed_by_absolute_path(tmp_path: Path, gen2000: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a, b = tmp_path / "x" / "t.jsonl", tmp_path / "y" / "t.jsonl"
    shutil.copy(gen2000, a)
    b.write_bytes(span_line("c" * 32, "1" * 16))
    cache = tmp_path / "c"
    assert open_index(a, cache)[0].span_count == 2000
    assert open_index(b, cache)[0].span_count == 1
    assert open_index(a, cache)[1] == "warm"


def test_default_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "h"))
    assert default_cache_dir() == tmp_path / "h"
    monkeypatch.delenv("HALO_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "pytest-halo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "pytest-halo"


def test_uncached_build_writes_nothing(tmp_path: Path, gen2000: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "never"))
    idx, how = open_index(gen2000, use_cache=False)
    assert how == "uncached" and idx.span_count == 2000
    assert not (tmp_path / "never").exists()


def test_file_appended_to_itself_drops_every_copy(tmp_path: Path, gen2000: Path) -> None:
    src = tmp_path / "t.jsonl"
    shutil.copy(gen2000, src)
    cache = tmp_path / "c"
    before, _ = open_index(src, cache)
    with open(src, "ab") as fh:
        fh.write(gen2000.read_bytes())
    after, how = open_index(src, cache)
    assert how == "incremental"
    assert _state(after) == _state(TraceIndex.build(src))
    assert after.span_count == 2000 and after.problems.skipped["duplicate_span"] == 2000
    assert [after.row(t)[: canonical_reader.M_MODEL] for t in range(len(after.trace_ids))] == [
        before.row(t)[: canonical_reader.M_MODEL] for t in range(len(before.trace_ids))
    ]
    assert after.lines_of([1999]) == [2000]  # dropped copies count as non-span lines after the originals


def test_fast_and_slow_extraction_agree(gen2000: Path) -> None:
    """The hot loop's shortcut and the full coercion path yield the same facts on canonical lines."""
    import orjson

    for line in gen2000.read_bytes().splitlines()[:500]:
        d = orjson.loads(line)
        fast = canonical_reader.fast_facts(d)
        slow = canonical_reader.span_facts(orjson.loads(line))
        assert fast is not None and not isinstance(slow, str)
        assert fast[:-1] == slow[:-1] and slow[-1] == []


def test_interrupted_append_leaves_a_usable_cache(tmp_path: Path, gen2000: Path) -> None:
    """Span-array files longer than the meta file says (a crash mid-append) are read up to the meta's count."""
    src = tmp_path / "t.jsonl"
    shutil.copy(gen2000, src)
    cache = tmp_path / "c"
    idx, _ = open_index(src, cache)
    for arr in (cache / "index").glob("*.bin"):
        with open(arr, "ab") as fh:
            fh.write(b"\x07" * 64)
    again, how = open_index(src, cache)
    assert how == "warm" and _state(again) == _state(idx)
    with open(src, "ab") as fh:
        fh.write(span_line("d" * 32, "1" * 16))
    grown, how = open_index(src, cache)
    assert how == "incremental" and _state(grown) == _state(TraceIndex.build(src))
    assert _state(open_index(src, cache)[0]) == _state(grown)
    for arr in (cache / "index").glob("*.bin"):
        arr.write_bytes(b"")  # truncated arrays: rebuilt silently
    assert open_index(src, cache)[1] == "cold"
