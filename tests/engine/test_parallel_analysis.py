"""The deterministic analysis of one large canonical file split across processes: findings.json byte-identical."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import orjson
import pytest

from engine.analysis import source, split_scan
from engine.analysis.detectors.api import Hit, TraceState
from engine.run import run_analysis
from engine.traces.store import TraceStore

sys.path.insert(0, str(Path(__file__).resolve().parent / "traces"))
from index_testdata import generate, span_line  # noqa: E402


def _spy_splits(monkeypatch: pytest.MonkeyPatch, splits: list[bool]) -> None:
    real = split_scan.split_scan

    def spy(*args: object) -> bool:
        ok = real(*args)  # type: ignore[arg-type]
        splits.append(ok)
        return ok

    monkeypatch.setattr(source, "split_scan", spy)


def _findings(path: Path, out: Path, jobs: int, monkeypatch: pytest.MonkeyPatch, splits: list[bool],
              detectors: tuple[object, ...] = ()) -> bytes:
    _spy_splits(monkeypatch, splits)
    run_analysis([path], out, jobs=jobs, detectors=detectors)
    return (out / "findings.json").read_bytes()


def _same(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: tuple[int, ...] = (2, 3, 5)) -> list[bool]:
    """findings.json from one process equals the one from each of ``jobs``; returns whether each split happened."""
    one = _findings(path, tmp_path / f"{path.stem}-1", 1, monkeypatch, [])
    splits: list[bool] = []
    for n in jobs:
        assert _findings(path, tmp_path / f"{path.stem}-{n}", n, monkeypatch, splits) == one, n
    assert orjson.loads(one)["failure_modes"] or orjson.loads(one)["one_offs"]  # something to compare
    return splits


@pytest.fixture(scope="module")
def gen3000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("apar") / "g.jsonl", 3000)


def test_generated_file_splits_and_matches(gen3000: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _same(gen3000, tmp_path, monkeypatch) == [True, True, True]


def test_bad_lines_and_repeats_inside_traces(gen3000: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Malformed lines, repeated spans (duplicates of their trace) and odd records: same tallies, examples relocated."""
    rng = random.Random(4)
    lines = gen3000.read_bytes().splitlines(keepends=True)
    out: list[bytes] = []
    for i, line in enumerate(lines):
        out.append(line)
        if rng.random() < 0.01:
            out.append(rng.choice([b"garbage\n", b"\n", b'{"trace_id": 7}\n', b"\xff\xfe\n", line]))  # line: a repeat
        if i % 700 == 0:
            tid = orjson.loads(line)["trace_id"]
            out.append(span_line(tid, f"{i:016x}", name="odd", status={"code": "STATUS_CODE_ERROR", "message": "boom"}))
    path = tmp_path / "messy.jsonl"
    path.write_bytes(b"".join(out))
    splits = _same(path, tmp_path, monkeypatch)
    assert all(splits)
    examples = orjson.loads((tmp_path / "messy-3" / "findings.json").read_bytes())
    assert "\x00" not in orjson.dumps(examples).decode()  # no part placeholder leaks


def test_interleaved_traces_fall_back_to_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = generate(tmp_path / "i.jsonl", 3000, seed=2, interleave=True)
    big = tmp_path / "i2.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    big.write_bytes(b"".join(lines[::2] + lines[1::2]))  # every trace on both sides of the middle
    splits = _same(big, tmp_path, monkeypatch, jobs=(2,))
    assert splits == [False]


def test_vendored_corpora(tmp_path: Path, corpora: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real corpora as canonical JSONL (what pytest capture and conversions write), repeated to a few MB."""
    store = TraceStore.open(corpora, cache_dir=tmp_path / "cache")
    joined = tmp_path / "corpora.jsonl"
    data = b"".join(Path(idx.path).read_bytes() for idx in store.indexes)
    joined.write_bytes(data * max(1, (3 << 20) // len(data) + 1))  # the repeats are duplicates: counted once
    assert any(_same(joined, tmp_path, monkeypatch, jobs=(2, 4)))


class _ManyTools:
    """A user run detector: sees every run in this process, in trace order, whatever the split did."""

    name = "many_tools"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_run(self, run: TraceState) -> list[Hit]:
        self.seen.append(run.trace_id)
        n = len(run.tools)
        return [Hit(self.name, f"{n} tools", f"a run with {n} tools", "tool", run.tools[0].span_id)] if n >= 3 else []


def test_user_run_detectors_see_split_runs_in_order(gen3000: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With a user detector the parts ship their states (frozen) instead of finishing the runs themselves."""
    one, two = _ManyTools(), _ManyTools()
    splits: list[bool] = []
    a = _findings(gen3000, tmp_path / "one", 1, monkeypatch, splits, (one,))
    b = _findings(gen3000, tmp_path / "two", 2, monkeypatch, splits, (two,))
    assert splits == [True] and a == b and one.seen == two.seen and len(one.seen) > 100
    assert any(m["detector"] == "many_tools" for m in orjson.loads(a)["failure_modes"])


def test_halo_analyze_jobs_flag(gen3000: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--jobs`` reaches the scanner as an argument: 1 never splits, 2 splits this small file."""
    from engine.cli import main

    outs = []
    splits: list[bool] = []
    _spy_splits(monkeypatch, splits)
    for jobs in ("1", "2"):
        main(["analyze", str(gen3000), "--out", str(tmp_path / jobs), "--jobs", jobs, "--fail-on", "never"])
        outs.append((tmp_path / jobs / "findings.json").read_bytes())
    assert outs[0] == outs[1] and splits == [True]
