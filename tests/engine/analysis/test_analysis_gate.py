"""The baseline gate: new / regressed / persisting / resolved / emerging / not re-run, and --fail-on semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.analysis.baseline import compare, load_baseline
from engine.findings import DatasetSummary, Evidence, FailureMode, Findings, OneOff, mode_id


def mode(key: str, runs: int, total: int) -> FailureMode:
    return FailureMode(
        id=mode_id("tool_error", key), title=f"Tool fails: {key}", category="tool_error", detector="tool_error",
        key=key, run_count=runs, prevalence=runs / total,
    )


def findings(total: int, modes: list[FailureMode], one_offs: list[OneOff] = (), observed=None) -> Findings:
    f = Findings(dataset=DatasetSummary(runs=total), failure_modes=modes, one_offs=list(one_offs))
    f.observed = observed if observed is not None else {m.id: m.run_count for m in modes}
    return f


def gate(cur: Findings, base: Findings | None, fail_on: str = "new"):
    return compare(cur, base, baseline_path=Path("b.json") if base else None, fail_on=fail_on, alpha=0.05)


def test_states() -> None:
    base = findings(100, [mode("same", 10, 100), mode("grows", 2, 100), mode("gone", 8, 100)],
                    one_offs=[OneOff(id=mode_id("tool_error", "rare"), title="rare", category="c", detector="tool_error",
                                     run_count=1)])
    cur = findings(100, [mode("same", 12, 100), mode("grows", 30, 100), mode("fresh", 33, 100),
                         mode("rare", 3, 100), mode("small", 2, 100)])
    g = gate(cur, base)
    assert [e.title for e in g.persisting] == ["Tool fails: same", "Tool fails: rare"]
    assert [e.title for e in g.regressed] == ["Tool fails: grows"]
    assert [e.title for e in g.new] == ["Tool fails: fresh"]
    assert [e.title for e in g.emerging] == ["Tool fails: small"]  # 2/100 unseen in 100: could be chance
    assert [e.title for e in g.resolved] == ["Tool fails: gone"]
    assert g.regressed[0].p_value < 0.05 and g.persisting[0].p_value > 0.05
    assert g.verdict == "fail" and g.failing_ids == [mode_id("tool_error", "fresh")]
    assert g.baseline == "b.json"


@pytest.mark.parametrize(
    ("fail_on", "modes", "verdict"),
    [
        ("new", ["same"], "pass"),
        ("new", ["same", "fresh"], "fail"),
        ("new", ["grows"], "pass"),
        ("regressed", ["grows"], "fail"),
        ("regressed", ["fresh"], "fail"),
        ("regressed", ["same"], "pass"),
        ("any", ["same"], "fail"),
        ("any", [], "pass"),
        ("never", ["fresh", "grows"], "pass"),
    ],
)
def test_fail_on(fail_on: str, modes: list[str], verdict: str) -> None:
    base = findings(100, [mode("same", 10, 100), mode("grows", 2, 100)])
    sizes = {"same": 10, "grows": 40, "fresh": 40}
    cur = findings(100, [mode(k, sizes[k], 100) for k in modes])
    assert gate(cur, base, fail_on).verdict == verdict


def test_no_baseline_reports_without_gating() -> None:
    cur = findings(50, [mode("fresh", 20, 50)])
    g = gate(cur, None, "new")
    assert g.verdict == "pass" and g.baseline is None and g.new == [] and g.notes
    assert gate(cur, None, "any").verdict == "fail"  # "any" needs no baseline


def test_regression_is_judged_on_both_sample_sizes() -> None:
    base = findings(10, [mode("m", 2, 10)])
    assert gate(findings(10, [mode("m", 5, 10)]), base, "regressed").verdict == "pass"  # 20% -> 50% of 10: noise
    assert gate(findings(1000, [mode("m", 500, 1000)]), findings(1000, [mode("m", 200, 1000)]),
                "regressed").verdict == "fail"


def test_load_baseline(tmp_path: Path) -> None:
    assert load_baseline(tmp_path / "missing.json", update=True) is None
    with pytest.raises(ValueError, match="does not exist"):
        load_baseline(tmp_path / "missing.json")
    f = findings(10, [mode("m", 3, 10)])
    f.write(tmp_path / "b.json")
    assert load_baseline(tmp_path / "b.json").failure_modes[0].id == f.failure_modes[0].id
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_baseline(tmp_path / "bad.json")


def test_outlier_modes_are_reported_but_never_fail_the_gate() -> None:
    slow = FailureMode(
        id=mode_id("latency_outlier", "tool:search"), title="Slow `search`", category="latency_outlier",
        detector="latency_outlier", key="tool:search", run_count=40, prevalence=0.4,
    )
    base = findings(100, [])
    g = gate(findings(100, [slow]), base)
    assert [e.id for e in g.new] == [slow.id]  # still classified and reported
    assert g.failing_ids == [] and g.verdict == "pass"
    assert any("never fail" in n for n in g.notes)
    g_any = gate(findings(100, [slow, mode("boom", 40, 100)]), None, fail_on="any")
    assert g_any.failing_ids == [mode_id("tool_error", "boom")] and g_any.verdict == "fail"


def _tested(key: str, tests: list[str], total: int) -> FailureMode:
    m = mode(key, len(tests), total)
    m.evidence = [Evidence(trace_id=f"{i:032x}", span_id=f"{i:016x}", test_nodeid=t) for i, t in enumerate(tests)]
    return m


def _run_of(tests: list[str], modes: list[FailureMode] = (), passing: list[str] = ()) -> Findings:
    f = findings(len(tests), list(modes))
    f.dataset = DatasetSummary(runs=len(tests), tests=len(tests), run_unit="tests", passing_test_ids=list(passing))
    return f


def test_a_baseline_mode_whose_tests_did_not_run_is_not_re_run_not_resolved() -> None:
    """A verify run re-runs one mode's tests: only that mode can be resolved; the others were not looked at."""
    a_tests, b_tests = ["t.py::a1", "t.py::a2"], ["t.py::b1", "t.py::b2"]
    base = _run_of([*a_tests, *b_tests, "t.py::ok"], [_tested("a", a_tests, 5), _tested("b", b_tests, 5)])
    rerun_a = _run_of(a_tests, passing=a_tests)  # a's tests now pass, b's never ran
    g = compare(rerun_a, base, baseline_path=Path("b.json"), fail_on="regressed", alpha=0.05, tests_run=a_tests)
    assert [e.id for e in g.resolved] == [mode_id("tool_error", "a")]
    assert [e.id for e in g.not_rerun] == [mode_id("tool_error", "b")]
    assert g.not_rerun[0].note == "none of its tests ran in this run" and g.verdict == "pass"
    # one of b's tests ran (and failed for another reason): b is resolved
    g2 = compare(_run_of([*a_tests, "t.py::b2"], passing=a_tests), base, baseline_path=Path("b.json"),
                 fail_on="regressed", alpha=0.05, tests_run=[*a_tests, "t.py::b2"])
    assert len(g2.resolved) == 2 and not g2.not_rerun


def test_without_every_test_id_every_absent_baseline_mode_is_resolved() -> None:
    base = _run_of(["t.py::a", "t.py::b"], [_tested("a", ["t.py::a"], 2), _tested("b", ["t.py::b"], 2)])
    traces_only = findings(4, [])  # plain `halo analyze` of traces: no test ids at all
    assert len(gate(traces_only, base).resolved) == 2 and not gate(traces_only, base).not_rerun
    unknown_failing = _run_of(["t.py::a", "t.py::x"], passing=["t.py::a"])  # t.py::x's id is not kept anywhere
    assert len(gate(unknown_failing, base).resolved) == 2
    # the passing ids and the tests the findings name are test ids the run ran, tests.jsonl or not
    complete = _run_of(["t.py::a"], passing=["t.py::a"])
    g = gate(complete, base)
    assert [e.id for e in g.resolved] == [mode_id("tool_error", "a")]
    assert [e.id for e in g.not_rerun] == [mode_id("tool_error", "b")]


def test_findings_written_before_not_rerun_existed_still_load(tmp_path: Path) -> None:
    old = findings(10, [mode("m", 3, 10)]).model_dump(mode="json")
    del old["gate"]["not_rerun"]
    assert Findings.model_validate(old).gate.not_rerun == []
