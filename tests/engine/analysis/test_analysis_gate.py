"""The baseline gate: new / regressed / persisting / resolved / emerging, and --fail-on semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.analysis.baseline import compare, load_baseline
from engine.findings import DatasetSummary, FailureMode, Findings, OneOff, mode_id


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
