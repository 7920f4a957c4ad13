"""The same span (trace id + span id) read twice counts once — in ``halo index``, ``halo analyze``, the store
and the deterministic analysis — whether one file holds it twice (``cat t.jsonl t.jsonl``), the file is
passed twice or copied, or one trace is split over files that overlap."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from engine.analysis import source
from engine.cli import main
from engine.findings import Findings
from engine.run import run_analysis
from engine.traces.store import TraceStore

GEN = Path(__file__).parents[2] / "data" / "gen_traces.py"


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("dedupe")
    t = d / "t.jsonl"
    subprocess.run([sys.executable, str(GEN), "--spans", "3000", "--out", str(t)], check=True, capture_output=True)
    lines = t.read_bytes().splitlines(keepends=True)
    (d / "tt.jsonl").write_bytes(t.read_bytes() * 2)  # cat t.jsonl t.jsonl
    shutil.copy(t, d / "copy.jsonl")
    (d / "a.jsonl").write_bytes(b"".join(lines[:1800]))  # one dataset split in two overlapping exports
    (d / "b.jsonl").write_bytes(b"".join(lines[1200:]))
    with gzip.open(d / "tt.jsonl.gz", "wb") as fh:  # the dict (ingest) path rather than the typed fast path
        fh.write(t.read_bytes() * 2)
    return {p.stem.replace(".jsonl", ""): p for p in d.iterdir()} | {"dir": d}


def _modes(f: Findings) -> dict[str, int]:
    return {m.id: m.run_count for m in f.failure_modes}


INPUTS = {
    "concatenated": ["tt.jsonl"],
    "same file twice": ["t.jsonl", "t.jsonl"],
    "copied file": ["t.jsonl", "copy.jsonl"],
    "overlapping split": ["a.jsonl", "b.jsonl"],
    "gzip, dict path": ["tt.jsonl.gz"],
}


@pytest.fixture(scope="module")
def reference(traces: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Findings:
    return run_analysis([traces["t"]], tmp_path_factory.mktemp("ref")).findings


@pytest.mark.parametrize("case", sorted(INPUTS))
def test_analysis_counts_each_span_once(case: str, traces: dict[str, Path], reference: Findings,
                                        tmp_path: Path) -> None:
    paths = [traces["dir"] / n for n in INPUTS[case]]
    f = run_analysis(paths, tmp_path / "out").findings
    assert (f.dataset.spans, f.dataset.traces) == (reference.dataset.spans, reference.dataset.traces) == (3000, f.dataset.traces)
    assert _modes(f) == _modes(reference)  # no phantom "repeated identical calls", no inflated counts
    assert {o.id: o.run_count for o in f.one_offs} == {o.id: o.run_count for o in reference.one_offs}
    if case != "same file twice":  # a file named twice is simply read once
        dups = f.dataset.skipped_by_reason.get("duplicate_span", 0)
        assert dups == {"overlapping split": 600}.get(case, 3000)
        assert any("duplicate_span" in e for e in f.dataset.problem_examples)


def test_fast_and_dict_paths_agree_on_duplicates(traces: dict[str, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fast = run_analysis([traces["tt"]], tmp_path / "fast").findings
    monkeypatch.setattr(source, "FAST_JSONL", False)
    slow = run_analysis([traces["tt"]], tmp_path / "slow").findings
    assert _modes(fast) == _modes(slow) and fast.dataset.spans == slow.dataset.spans == 3000
    assert fast.dataset.skipped_by_reason == slow.dataset.skipped_by_reason
    assert fast.dataset.problem_examples == slow.dataset.problem_examples  # each with its file:line
    assert any(e.startswith(f"{traces['tt']}:3001: duplicate_span") for e in slow.dataset.problem_examples)


def test_a_repeated_file_is_no_false_gate_failure(traces: dict[str, Path], tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    run_analysis([traces["t"]], tmp_path / "b", baseline=baseline, update_baseline=True)
    outcome = run_analysis([traces["tt"]], tmp_path / "c", baseline=baseline, fail_on="regressed")
    assert outcome.findings.gate.new == [] and outcome.findings.gate.regressed == []
    assert outcome.verdict == "pass"


@pytest.mark.parametrize("case", sorted(set(INPUTS) - {"gzip, dict path"}))
def test_index_store_and_analyze_agree(case: str, traces: dict[str, Path], reference: Findings, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(traces["dir"] / n) for n in INPUTS[case]]
    assert main(["index", "--json", "--no-cache", *paths]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["spans"] == reference.dataset.spans == 3000
    assert report["traces"] == reference.dataset.traces
    store = TraceStore.open(paths, use_cache=False)
    pairs = [(tid, s["span_id"]) for tid, spans in store.iter_traces() for s in spans]
    assert len(pairs) == len(set(pairs)) == 3000 == store.span_count
    single = TraceStore.open([str(traces["t"])], use_cache=False)
    assert store.report()["error_spans"] == single.report()["error_spans"]
    for tid in single.trace_ids[:20]:
        assert sorted(s["span_id"] for s in store.spans(tid)) == sorted(s["span_id"] for s in single.spans(tid))
    overview, one = store.get_dataset_overview(), single.get_dataset_overview()
    assert overview.total_spans == one.total_spans == 3000 and overview.total_traces == one.total_traces
    assert (overview.error_span_count, overview.categories) == (one.error_span_count, one.categories)


def test_cross_file_duplicates_are_reported_per_file_with_file_line(traces: dict[str, Path]) -> None:
    store = TraceStore.open([str(traces["a"]), str(traces["b"])], use_cache=False)
    files = {Path(f["path"]).name: f for f in store.report()["files"]}
    assert files["a.jsonl"]["spans"] == 1800 and files["b.jsonl"]["spans"] == 1200
    assert files["b.jsonl"]["skipped_by_reason"] == {"duplicate_span": 600}
    assert any(e.startswith(f"{traces['b']}:1: duplicate_span") for e in store.problems.examples), store.problems.examples
    copied = TraceStore.open([str(traces["t"]), str(traces["copy"])], use_cache=False).report()
    by_name = {Path(f["path"]).name: f for f in copied["files"]}
    assert by_name["copy.jsonl"]["spans"] == 0 and by_name["copy.jsonl"]["traces"] == 0
    assert copied["repaired"] == TraceStore.open([str(traces["t"])], use_cache=False).report()["repaired"]
