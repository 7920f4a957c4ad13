"""A cold index built by several processes is byte-identical to the one-process build."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import orjson
import pytest

from engine.traces import content_index
from engine.traces.index import TraceIndex
from engine.traces.index_cache import dump, open_index
from engine.traces.index_parallel import build_parallel
from engine.traces.parallel import default_jobs, line_ranges, resolve_jobs
from engine.traces.store import TraceStore

sys.path.insert(0, str(Path(__file__).resolve().parent / "traces"))
from index_testdata import generate, span_line  # noqa: E402


def _serialized(idx: TraceIndex) -> bytes:
    """Everything the cache would store: the meta file and every span array."""
    st = idx.state
    arrays = b"".join(getattr(st, name).tobytes() for name in ("off", "ln", "tr", "sid", "pid"))
    return dump(idx, {"fp": 0}) + arrays


def _same(path: Path, jobs: int, tmp: Path) -> None:
    one = TraceIndex.build(path, content=False)
    cix = tmp / f"{path.name}.{jobs}.cix"
    many = build_parallel(str(path), jobs, content_file=str(cix))
    assert _serialized(many) == _serialized(one), jobs
    assert many.problems.to_dict() == one.problems.to_dict()
    assert cix.read_bytes() == content_index.build_bytes(str(path), one.end)


def _messy(path: Path, src: Path, seed: int) -> Path:
    """``src``'s lines shuffled in windows (traces cross every cut), with bad lines, duplicates,
    orphans, a parent cycle, a self parent, odd ids and a trailing line without a newline."""
    rng = random.Random(seed)
    lines = src.read_bytes().splitlines(keepends=True)
    out: list[bytes] = []
    for k in range(0, len(lines), 40):
        window = lines[k : k + 40]
        rng.shuffle(window)
        out.extend(window)
    tid = "ab" * 16
    extra = [
        b"not json at all\n",
        b"\n",
        b'{"trace_id": 5}\n',
        b"\xff\xfe bad utf-8 \xff\n",
        span_line(tid, "1" * 16, "2" * 16),  # cycle 1 -> 2 -> 1
        span_line(tid, "2" * 16, "1" * 16),
        span_line(tid, "3" * 16, "3" * 16),  # self parent
        span_line(tid, "4" * 16, "9" * 16),  # orphan
        span_line("CD" * 16, "5" * 16, name="upper-case trace id"),
        span_line(tid, "6" * 16, attributes={"halo.test.nodeid": "t.py::a", "halo.test.outcome": "passed"}),
        span_line(tid, "7" * 16, attributes={"halo.test.nodeid": "t.py::b", "halo.test.outcome": "failed"}),
    ]
    for e in extra * 3:  # each three times: the copies are duplicates, possibly in another part
        out.insert(rng.randrange(len(out) + 1), e)
    out.extend(lines[:25])  # a repeated head: duplicates of spans read long before
    path.write_bytes(b"".join(out) + b'{"trace_id": "unterminated"')
    return path


@pytest.fixture(scope="module")
def gen3000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("par") / "g.jsonl", 3000)


@pytest.mark.parametrize("jobs", [2, 3, 7])
def test_generated_file(gen3000: Path, tmp_path: Path, jobs: int) -> None:
    _same(gen3000, jobs, tmp_path)


def test_interleaved_and_messy_file(gen3000: Path, tmp_path: Path) -> None:
    inter = generate(tmp_path / "i.jsonl", 2000, seed=3, interleave=True)
    messy = _messy(tmp_path / "m.jsonl", gen3000, seed=1)
    for path in (inter, messy):
        for jobs in (2, 4, 9):
            _same(path, jobs, tmp_path)


def test_vendored_corpora_converted(tmp_path: Path, corpora: Path) -> None:
    """Every real corpus, converted to canonical JSONL, concatenated and shuffled: same index on 1..5 processes."""
    store = TraceStore.open(corpora, cache_dir=tmp_path / "cache")
    assert store.span_count > 1000
    joined = tmp_path / "all.jsonl"
    joined.write_bytes(b"".join(Path(idx.path).read_bytes() for idx in store.indexes))
    for path in (joined, _messy(tmp_path / "all-messy.jsonl", joined, seed=2)):
        for jobs in (2, 3, 5):
            _same(path, jobs, tmp_path)


def test_ranges_end_on_line_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"a" * 100 + b"\n" + b"bb\n" * 50 + b"c" * 500 + b"\n" + b"tail")
    data = path.read_bytes()
    for parts in (1, 2, 3, 8, 40):
        ranges = line_ranges(str(path), parts)
        assert ranges[0][0] == 0 and ranges[-1][1] == len(data) and len(ranges) == parts
        for (a, b), (c, _) in zip(ranges, ranges[1:], strict=False):
            assert b == c and (a == b or data[b - 1 : b] == b"\n")


def test_cache_uses_jobs_and_serves_the_same_store(tmp_path: Path) -> None:
    """Through the cache (cold on 3 processes, then warm and incremental), answers equal the one-process store's."""
    big = generate(tmp_path / "big.jsonl", 3000, seed=5)
    data = big.read_bytes()
    big.write_bytes(data * 2)  # > 1 MB so three parts are allowed; the second half is all duplicates
    assert resolve_jobs(3, big.stat().st_size) == 3 and default_jobs(1000) == 1
    idx, how = open_index(big, tmp_path / "c3", jobs=3)
    one, _ = open_index(big, tmp_path / "c1", jobs=1)
    assert how == "cold" and _serialized(idx) == _serialized(one)
    assert idx.content is not None and idx.content.raw.tobytes() == one.content.raw.tobytes()  # type: ignore[union-attr]
    again, how = open_index(big, tmp_path / "c3", jobs=3)
    assert how == "warm" and _serialized(again) == _serialized(one)
    rec = orjson.loads(data.splitlines()[0])
    with open(big, "ab") as fh:
        fh.write(span_line(rec["trace_id"], "f" * 16, rec["span_id"]))
    grown, how = open_index(big, tmp_path / "c3", jobs=3)
    assert how == "incremental" and _serialized(grown) == _serialized(TraceIndex.build(big))
    s3 = TraceStore.open(big, cache_dir=tmp_path / "c3", jobs=3)
    s1 = TraceStore.open(big, use_cache=False, jobs=1)
    assert s3.report()["spans"] == s1.report()["spans"] and s3.trace_ids == s1.trace_ids


def test_halo_index_jobs_flag(tmp_path: Path, gen3000: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    big = tmp_path / "big.jsonl"
    big.write_bytes(gen3000.read_bytes() * 2)
    reports = []
    for jobs in ("1", "3"):
        assert main(["index", str(big), "--json", "--jobs", jobs, "--cache-dir", str(tmp_path / f"c{jobs}")]) == 0
        rep = orjson.loads(capsys.readouterr().out)
        rep.pop("seconds")
        reports.append(rep)
    assert reports[0] == reports[1] and reports[0]["files"][0]["index"] == "cold"
    assert main(["index", str(big), "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_spawned_workers_and_a_pool_that_cannot_start(gen3000: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``fork`` (threads running, other platforms) workers are spawned; without processes at all the
    parts run here one after another: the same index either way."""
    import multiprocessing as mp

    from engine.traces import parallel

    one = _serialized(TraceIndex.build(gen3000, content=False))
    monkeypatch.setattr(parallel, "_context", lambda: mp.get_context("spawn"))
    assert _serialized(build_parallel(str(gen3000), 2)) == one

    def no_pool(*args: object, **kwargs: object) -> None:
        raise OSError("no processes here")

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", no_pool)
    assert _serialized(build_parallel(str(gen3000), 3)) == one
