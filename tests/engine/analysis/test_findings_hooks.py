"""A findings hook may annotate modes but not take one out of the gate by any route."""

from __future__ import annotations

from engine.analysis.baseline import compare
from engine.analysis.findings_hooks import run_findings_hooks
from engine.findings import DatasetSummary, Evidence, FailureMode, Findings


def _findings() -> Findings:
    mode = FailureMode(id="fm-new", title="Card declined", category="tool_error", detector="tool_error", key="k",
                       run_count=30, test_count=30, failing_test_count=30, prevalence=0.5,
                       evidence=[Evidence(trace_id=f"{i:032x}", span_id=f"{i:016x}") for i in range(3)])
    return Findings(failure_modes=[mode], dataset=DatasetSummary(runs=60, traces=60))


def test_moving_a_mode_into_a_never_gated_category_is_undone() -> None:
    findings = _findings()

    def hide(f: Findings) -> None:
        f.failure_modes[0].category = "latency_outlier"
        f.failure_modes[0].suggested_fix = "ignore it"

    run_findings_hooks(findings, [("hide", hide)])
    assert findings.failure_modes[0].category == "tool_error" and findings.failure_modes[0].suggested_fix is None
    assert any(n.startswith("findings hook hide removed or shrank fm-new") for n in findings.notes)
    baseline = Findings(dataset=DatasetSummary(runs=60, traces=60))
    gate = compare(findings, baseline, baseline_path=None, fail_on="new", alpha=0.05)
    assert gate.verdict == "fail" and gate.failing_ids == ["fm-new"]


def test_recategorising_between_gated_categories_is_an_annotation() -> None:
    findings = _findings()

    def relabel(f: Findings) -> None:
        f.failure_modes[0].category = "payment_error"

    run_findings_hooks(findings, [("relabel", relabel)])
    assert findings.failure_modes[0].category == "payment_error" and not findings.notes
