"""Small suites can gate: a mode the baseline never saw, in tests that *passed* in the baseline (node ids pair
the runs), is evidence — a real new failure in 3 of 15 tests is "new", not waved through as "emerging"."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from spanbuilder import Run  # noqa: E402

from engine.analysis.baseline import compare, paired_p_value  # noqa: E402
from engine.findings import DatasetSummary, Evidence, FailureMode, Findings, mode_id  # noqa: E402
from engine.run import run_analysis  # noqa: E402


def _nodeid(i: int) -> str:
    return f"tests/test_agent.py::test_case[{i}]"


def _suite(path: Path, n: int, broken: set[int], tool_error: str = "Error: payment gateway timeout after 30s") -> Path:
    """``n`` tests of one agent; those in ``broken`` hit a tool error and fail, the others pass."""
    with open(path, "wb") as fh:
        for i in range(n):
            r = Run(i, nodeid=_nodeid(i), outcome="failed" if i in broken else "passed")
            r.llm(calls=[("lookup", json.dumps({"order": i}))])
            if i in broken:
                r.tool("charge", json.dumps({"order": i}), tool_error)
            else:
                r.tool("lookup", json.dumps({"order": i}), '{"status": "shipped"}')
            r.llm(text=f"Order {i} handled.")
            for s in r.spans:
                fh.write(orjson.dumps(s) + b"\n")
    return path


def test_three_new_failures_in_fifteen_tests_fail_the_gate(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    run_analysis([_suite(tmp_path / "base.jsonl", 15, set())], tmp_path / "b", baseline=baseline, update_baseline=True)
    assert len(json.loads(baseline.read_text())["dataset"]["passing_test_ids"]) == 15
    outcome = run_analysis([_suite(tmp_path / "cand.jsonl", 15, {3, 7, 11})], tmp_path / "c", baseline=baseline)
    gate = outcome.findings.gate
    assert [e.title for e in gate.new] and not gate.emerging, gate
    assert gate.verdict == "fail" and outcome.exit_code == 1


def test_a_smaller_baseline_still_gates_through_the_paired_tests(tmp_path: Path) -> None:
    """The baseline ran 5 of the tests: alone, 0 of 5 runs is too little to call a 3-of-15 mode new
    ((1 - 3/15)^5 = 0.33); the 3 failing tests passed in that baseline, which is evidence."""
    baseline = tmp_path / "baseline.json"
    run_analysis([_suite(tmp_path / "base.jsonl", 5, set())], tmp_path / "b", baseline=baseline, update_baseline=True)
    outcome = run_analysis([_suite(tmp_path / "cand.jsonl", 15, {0, 2, 4})], tmp_path / "c", baseline=baseline)
    gate = outcome.findings.gate
    tool_error = mode_id("tool_error", "charge\x1fError: payment gateway timeout after <*>")
    assert tool_error in {e.id for e in gate.new} and gate.verdict == "fail", gate
    for e in gate.new:  # the tool error and the "runs that call charge fail" contrast, both on these 3 tests
        assert e.note == "in 3 tests that passed in the baseline without it"
        assert e.p_value == pytest.approx(1 / 27)

    unpaired = run_analysis([_suite(tmp_path / "cand2.jsonl", 15, {10, 12, 14})], tmp_path / "c2", baseline=baseline)
    g2 = unpaired.findings.gate  # the same failure in tests the baseline never ran: not enough evidence
    assert not g2.new and tool_error in {e.id for e in g2.emerging} and g2.verdict == "pass"
    for emerging in g2.emerging:  # named, in the gate notes and the terminal's gate line
        assert any(emerging.id in n and emerging.title in n for n in g2.notes if n.startswith("emerging"))
        assert any(emerging.id in line and "emerging" in line for line in unpaired.summary_lines), unpaired.summary_lines


def _findings(runs: int, passing: list[str], modes: list[tuple[str, list[str]]]) -> Findings:
    f = Findings(dataset=DatasetSummary(runs=runs, tests=runs, run_unit="tests", passing_test_ids=passing))
    for key, tests in modes:
        f.failure_modes.append(FailureMode(
            id=mode_id("tool_error", key), title=f"Tool error {key}", category="tool_error", detector="tool_error",
            key=key, run_count=len(tests), test_count=len(tests), prevalence=len(tests) / runs,
            evidence=[Evidence(trace_id=f"{i:032x}", test_nodeid=t) for i, t in enumerate(tests)]))
    return f


@pytest.mark.parametrize(("paired", "verdict"), [(1, "pass"), (2, "pass"), (3, "fail"), (4, "fail")])
def test_paired_tests_needed_to_call_a_mode_new(paired: int, verdict: str) -> None:
    base = _findings(4, [_nodeid(i) for i in range(4)], [])
    tests = [_nodeid(i) for i in range(paired)] + [_nodeid(100 + i) for i in range(3)]
    gate = compare(_findings(40, [], [("charge", tests)]), base, baseline_path=Path("b.json"), fail_on="new",
                   alpha=0.05)
    assert gate.verdict == verdict
    entry = (gate.new or gate.emerging)[0]
    assert entry.p_value == pytest.approx(min(paired_p_value(paired), (1 - len(tests) / 40) ** 4))


def test_tests_that_failed_in_the_baseline_are_not_paired_evidence() -> None:
    ids = [_nodeid(i) for i in range(4)]
    base = _findings(4, [], [])  # the same four tests ran, all failing (for other reasons)
    gate = compare(_findings(40, [], [("charge", ids[:3])]), base, baseline_path=Path("b.json"), fail_on="new",
                   alpha=0.05)
    assert gate.verdict == "pass" and len(gate.emerging) == 1
    assert paired_p_value(0) == 1.0 and paired_p_value(3) == pytest.approx(1 / 27)


def test_same_harness_trials_paired_by_task_give_no_new_mode(corpora: Path, tmp_path: Path) -> None:
    """Real agent noise: tau-bench trial 0 vs trial 2 of the same 50 tasks, node ids paired by task (trial
    numbers removed). Pairing must not turn run-to-run variation into "new" modes."""
    path = corpora / "tau-bench-airline" / "gpt-4o-airline.json"
    records = json.loads(path.read_bytes())
    (tmp_path / "b.json").write_text(json.dumps([dict(r, trial=0) for r in records if r["trial"] == 0]))
    (tmp_path / "c.json").write_text(json.dumps([dict(r, trial=0) for r in records if r["trial"] == 2]))
    baseline = tmp_path / "baseline.json"
    first = run_analysis([tmp_path / "b.json"], tmp_path / "b", baseline=baseline, update_baseline=True)
    assert len(first.findings.dataset.passing_test_ids) > 10
    outcome = run_analysis([tmp_path / "c.json"], tmp_path / "c", baseline=baseline)
    gate = outcome.findings.gate
    assert gate.new == [] and gate.verdict == "pass", [(e.title, e.note) for e in gate.new]
    candidate_ids = {e.test_nodeid for m in outcome.findings.failure_modes for e in m.evidence}
    assert candidate_ids & set(first.findings.dataset.passing_test_ids)  # the runs really are paired


def _mixed(path: Path, tests: dict[int, str]) -> Path:
    """One run per test: ``charge`` / ``refund`` hit that tool's error and fail, ``ok`` passes, ``fails``
    fails with no failure mode at all (a wrong answer)."""
    with open(path, "wb") as fh:
        for i, kind in tests.items():
            r = Run(i, nodeid=_nodeid(i), outcome="passed" if kind == "ok" else "failed")
            if kind in ("charge", "refund"):
                r.tool(kind, json.dumps({"order": i}), f"Error: {kind} service rejected the request")
            r.llm(text=f"Order {i} handled.")
            for s in r.spans:
                fh.write(orjson.dumps(s) + b"\n")
    return path


def _tests_jsonl(path: Path, tests: dict[int, str]) -> Path:
    path.write_text("".join(json.dumps({"nodeid": _nodeid(i), "outcome": "passed" if k == "ok" else "failed"}) + "\n"
                            for i, k in tests.items()))
    return path


def test_a_run_of_one_modes_tests_resolves_it_and_leaves_the_others_not_re_run(tmp_path: Path) -> None:
    """What a fix brief's verify command does: re-run the tests of one mode against the full baseline."""
    suite = {i: "charge" if i in (3, 7, 11) else "refund" if i in (4, 8, 12) else "ok" for i in range(15)}
    baseline = tmp_path / "baseline.json"
    run_analysis([_mixed(tmp_path / "base.jsonl", suite)], tmp_path / "b", baseline=baseline, update_baseline=True)
    charge = mode_id("tool_error", "charge\x1fError: charge service rejected the request")
    refund = mode_id("tool_error", "refund\x1fError: refund service rejected the request")
    assert {charge, refund} <= {m.id for m in Findings.read(baseline).failure_modes}

    # charge repaired; its three tests and a new test failing for an unrelated reason re-run
    rerun = {3: "ok", 7: "ok", 11: "ok", 20: "fails"}
    out = run_analysis([_mixed(tmp_path / "c.jsonl", rerun)], tmp_path / "c", baseline=baseline,
                       tests_file=_tests_jsonl(tmp_path / "tests.jsonl", rerun), fail_on="regressed")
    gate = out.findings.gate
    assert charge in {e.id for e in gate.resolved} and refund in {e.id for e in gate.not_rerun}
    assert refund not in {e.id for e in gate.resolved} and gate.verdict == "pass"
    changes = next(line for line in out.summary_lines if "since baseline" in line)
    assert "resolved" in changes and "not re-run" in changes, out.summary_lines
    report = (tmp_path / "c" / "report.md").read_text()
    assert "**Not re-run" in report and refund in report

    # the traces alone do not name test 20 (no span of it carries a mode): without tests.jsonl the run's
    # tests are not all known, so nothing is called not re-run
    blind = run_analysis([tmp_path / "c.jsonl"], tmp_path / "d", baseline=baseline, fail_on="regressed")
    assert not blind.findings.gate.not_rerun and refund in {e.id for e in blind.findings.gate.resolved}

    # charge still broken: it persists or regresses, refund is still not re-run
    broken = {3: "charge", 7: "charge", 11: "charge"}
    again = run_analysis([_mixed(tmp_path / "e.jsonl", broken)], tmp_path / "e", baseline=baseline,
                         tests_file=_tests_jsonl(tmp_path / "tests-e.jsonl", broken), fail_on="regressed")
    g = again.findings.gate
    assert charge in {e.id for e in g.regressed + g.persisting} and refund in {e.id for e in g.not_rerun}
