"""``run_analysis``: the seam the plugin and the CLI call — files written, tests.jsonl, reasoners, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from spanbuilder import Run

from engine.findings import Evidence, FailureMode, Findings, mode_id
from engine.reasoning import ReasonContext, ReasonResult
from engine.run import AnalysisInputError, run_analysis


def write_jsonl(path: Path, runs: list[Run], extra_lines: list[bytes] = ()) -> Path:
    with open(path, "wb") as fh:
        for r in runs:
            for s in r.spans:
                fh.write(orjson.dumps(s) + b"\n")
        for line in extra_lines:
            fh.write(line + b"\n")
    return path


def failing_runs(n: int, start: int = 0, nodeid: bool = True) -> list[Run]:
    out = []
    for i in range(start, start + n):
        r = Run(i, nodeid=f"tests/test_agent.py::test_{i}" if nodeid else None, outcome="failed" if nodeid else None)
        r.tool("refund", json.dumps({"order": i}), f"Error: order {i} not refundable")
        r.llm(text="Could not refund.")
        out.append(r)
    return out


def test_writes_three_files_and_summary(tmp_path: Path) -> None:
    traces = write_jsonl(tmp_path / "traces.jsonl", failing_runs(3), [b"{broken", b'{"trace_id": 5}'])
    out = run_analysis([traces], tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {
        "findings.json", "report.md", "junit.xml", "fix-brief.md", "fix-brief.json", "brief-baselines"}
    data = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert data["schema_version"] == 1
    assert data["dataset"]["skipped"] == 2 and data["dataset"]["skipped_by_reason"]["malformed_json"] == 1
    assert data["gate"]["baseline"] is None and data["gate"]["verdict"] == "pass"
    assert out.verdict == "pass" and out.exit_code == 0
    assert 2 <= len(out.summary_lines) <= 12
    assert any("Tool `refund` fails" in line for line in out.summary_lines)
    assert any("report" in line for line in out.summary_lines)


def test_tests_file_links_traces_and_counts_spanless_tests(tmp_path: Path) -> None:
    runs = failing_runs(3, nodeid=False)
    traces = write_jsonl(tmp_path / "traces.jsonl", runs)
    tests = tmp_path / "tests.jsonl"
    recs = [
        {"nodeid": f"t.py::test_{i}", "outcome": "failed", "duration": 1.0, "reason": "", "worker": "gw0",
         "trace_ids": [r.trace_id]}
        for i, r in enumerate(runs)
    ] + [{"nodeid": f"t.py::test_ok_{i}", "outcome": "passed", "duration": 0.1, "reason": "", "worker": "gw1",
          "trace_ids": []} for i in range(5)]
    tests.write_text("\n".join(json.dumps(r) for r in recs) + "\nnot json\n")
    f = run_analysis([traces], tmp_path / "out", tests_file=tests).findings
    assert f.dataset.run_unit == "tests" and f.dataset.tests == 8 and f.dataset.failing_tests == 3
    (m,) = [m for m in f.failure_modes if m.detector == "tool_error"]
    assert m.test_count == 3 and m.failing_test_count == 3 and m.prevalence == pytest.approx(3 / 8)
    assert {e.test_nodeid for e in m.evidence} == {f"t.py::test_{i}" for i in range(3)}
    assert f.dataset.skipped_by_reason == {"malformed_test_record": 1}


def test_update_baseline_then_gate(tmp_path: Path) -> None:
    base_traces = write_jsonl(tmp_path / "a.jsonl", failing_runs(3))
    baseline = tmp_path / "nested" / "baseline.json"
    first = run_analysis([base_traces], tmp_path / "o1", baseline=baseline, update_baseline=True)
    assert first.verdict == "pass" and Findings.read(baseline).failure_modes
    cand = failing_runs(4, 10)
    for r in cand:
        r.tool("ship", "{}", "Error: carrier API down")
    second = run_analysis([write_jsonl(tmp_path / "b.jsonl", cand)], tmp_path / "o2", baseline=baseline)
    gate = second.findings.gate
    assert [e.title for e in gate.persisting] == ["Tool `refund` fails: Error: order <*> not refundable"]
    assert [e.title for e in gate.emerging + gate.new] == ["Tool `ship` fails: Error: carrier API down"]
    never = run_analysis([tmp_path / "b.jsonl"], tmp_path / "o3", baseline=baseline, fail_on="never")
    assert never.verdict == "pass"
    anyf = run_analysis([tmp_path / "b.jsonl"], tmp_path / "o4", baseline=baseline, fail_on="any")
    assert anyf.verdict == "fail" and anyf.exit_code == 1


class _Reasoner:
    name = "fake-llm"

    def __init__(self, confirm_id: str) -> None:
        self.confirm_id = confirm_id
        self.seen: Findings | None = None

    def reason(self, context: ReasonContext) -> ReasonResult:
        self.seen = context.findings
        return ReasonResult(modes=[
            FailureMode(id=self.confirm_id, title="LLM view of the refund errors", category="tool_error",
                        detector="llm", key="x", suggested_fix="Check refund policy first"),
            FailureMode(id=mode_id("llm", "policy confusion"), title="Agent misreads the refund policy",
                        category="policy", detector="llm", key="policy confusion", run_count=2,
                        evidence=[Evidence(trace_id="a" * 32, span_id="b" * 16)]),
        ], answer="## Refunds\nThe agent misreads the refund policy.",
           totals={"model": "gpt-test", "requests": 7, "cached": 2, "tokens_in": 1200, "tokens_out": 300,
                   "cost_usd": 0.0123, "wall_s": 1.5, "stopped_because": "finished"})


class _Broken:
    name = "broken"

    def reason(self, context: ReasonContext) -> ReasonResult:
        raise RuntimeError("model unavailable")


def test_reasoners_and_publishers_are_checked_when_registered(tmp_path: Path) -> None:
    traces = write_jsonl(tmp_path / "t.jsonl", failing_runs(3))

    class NotAReasoner:
        name = "old-style"

        def find(self, store, findings):
            return []

    with pytest.raises(TypeError, match="not a Reasoner"):
        run_analysis([traces], tmp_path / "out", reasoners=[NotAReasoner()])
    with pytest.raises(TypeError, match="not a Publisher"):
        run_analysis([traces], tmp_path / "out", publishers=[object()])
    assert not (tmp_path / "out").exists()


def test_reasoners_merge_as_llm_or_both(tmp_path: Path) -> None:
    traces = write_jsonl(tmp_path / "t.jsonl", failing_runs(3))
    det_id = mode_id("tool_error", "refund\x1fError: order <*> not refundable")
    r = _Reasoner(det_id)
    f = run_analysis([traces], tmp_path / "out", reasoners=[r, _Broken()]).findings
    assert r.seen is not None
    sources = {m.id: m.source for m in f.failure_modes}
    assert sources[det_id] == "both" and sources[mode_id("llm", "policy confusion")] == "llm"
    assert f.mode(mode_id("llm", "policy confusion")).prevalence == pytest.approx(2 / 3)
    assert any("broken" in n and "model unavailable" in n for n in f.notes)
    assert f.llm is not None and (f.llm.model, f.llm.requests, f.llm.cost_usd) == ("gpt-test", 7, 0.0123)
    assert f.llm_answer and "misreads the refund policy" in f.llm_answer
    report = (tmp_path / "out" / "report.md").read_text()
    assert "gpt-test" in report and "misreads the refund policy" in report


def test_nothing_readable_raises(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(AnalysisInputError):
        run_analysis([empty], tmp_path / "out")
    with pytest.raises(AnalysisInputError):
        run_analysis([tmp_path / "missing.jsonl"], tmp_path / "out")
    with pytest.raises(ValueError, match="fail_on"):
        run_analysis([empty], tmp_path / "out", fail_on="sometimes")
