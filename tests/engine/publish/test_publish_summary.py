"""The terminal summary: tests and gate apart, root causes with facets, changes since baseline, nothing hostile."""

from __future__ import annotations

from pathlib import Path

from engine.analysis.summary import summary_lines
from engine.findings import DatasetSummary, FailureMode, Findings, Gate, GateEntry

DATA = DatasetSummary(spans=247, traces=26, tests=26, failing_tests=12, passing_tests=14, runs=26, run_unit="tests")


def _mode(i: int, category: str, title: str, root: int, failing: int = 3) -> FailureMode:
    return FailureMode(id=f"fm-{i:012d}", title=title, category=category, detector=category, key=str(i),
                       run_count=failing, test_count=failing, failing_test_count=failing,
                       root_cause=f"fm-{root:012d}")


def _findings(gate: Gate | None = None) -> Findings:
    return Findings(dataset=DATA, gate=gate or Gate(), failure_modes=[
        _mode(1, "tool_error", "Tool `update_address` fails: pending_validation", 1),
        _mode(2, "retry_loop", "Retry loop on failing tool `update_address`", 1),
        _mode(3, "budget_exhaustion", "Agent exhausts its budget (max turns)", 1),
        _mode(4, "tool_error", "Tool `lookup_order` fails: unsupported id", 4, failing=4),
    ])


def test_headline_root_causes_and_report_path(tmp_path: Path) -> None:
    lines = summary_lines(_findings(), tmp_path / "report.md")
    assert lines[0] == "halo: 12 of 26 tests failed · gate: not gated — no baseline to compare with (fail-on=new)"
    assert lines[1] == "halo: 2 root causes (4 failure modes) in 247 spans, 26 traces; 0 one-offs"
    assert lines[2] == "  1. Tool `lookup_order` fails: unsupported id — 4 of 12 failing tests  fm-000000000004"
    assert lines[3] == ("  2. Tool `update_address` fails: pending_validation (+ retry loop, budget exhausted)"
                        " — 3 of 12 failing tests  fm-000000000001")
    assert lines[-1].startswith("halo: report -> ") and lines[-1].endswith("report.md")
    assert len(lines) <= 12


def test_gate_and_changes_since_baseline() -> None:
    gate = Gate(baseline="base.json", verdict="fail", failing_ids=["fm-000000000004"],
                new=[GateEntry(id="fm-000000000004", title="Tool `lookup_order` fails: unsupported id")],
                resolved=[GateEntry(id="fm-000000000009", title="old")],
                persisting=[GateEntry(id="fm-000000000001", title="x")])
    lines = summary_lines(_findings(gate))
    assert lines[0] == "halo: 12 of 26 tests failed · gate: FAILED, 1 new vs baseline (fail-on=new)"
    assert "[new]" in lines[2]
    assert lines[-1] == ("halo: since baseline: new: Tool `lookup_order` fails: unsupported … (fm-000000000004);"
                         " 1 resolved; 1 mode persisting")
    quiet = Gate(baseline="base.json", persisting=[GateEntry(id="fm-000000000001", title="x")])
    lines = summary_lines(_findings(quiet))
    assert lines[0].endswith("gate: no new failure modes vs baseline (fail-on=new)")
    assert lines[-1] == "halo: since baseline: no changes (1 mode persisting)"


def test_lines_carry_no_escape_or_secret() -> None:
    f = _findings()
    f.failure_modes[3].title = "Tool `x` fails: \x1b[2J\x1b]0;owned\x07 password=hunter ghp_abcdefghijklmnopqrstuvwxyz0123"
    text = "\n".join(summary_lines(f))
    assert "\x1b" not in text and "\x07" not in text and "owned" not in text
    assert "hunter" not in text and "ghp_" not in text


def test_many_root_causes_are_capped() -> None:
    modes = [_mode(i, "tool_error", f"Tool `t{i}` fails", i) for i in range(1, 11)]
    lines = summary_lines(Findings(dataset=DATA, failure_modes=modes))
    assert lines[-1] == "  … and 4 more in the report" and len(lines) <= 12


def test_modes_in_a_green_run_count_tests_not_failing_ones() -> None:
    green = DatasetSummary(spans=11, traces=4, tests=4, passing_tests=4, runs=4, run_unit="tests")
    mode = _mode(1, "tool_error", "Tool `fetch_page` fails", 1, failing=0)
    mode.test_count = mode.run_count = 3
    lines = summary_lines(Findings(dataset=green, failure_modes=[mode]))
    assert lines[0].startswith("halo: all 4 tests passed · gate:")
    assert lines[2] == "  1. Tool `fetch_page` fails — 3 tests, all passing  fm-000000000001"


def test_llm_line_is_cleaned() -> None:
    """Why the engine stopped can quote a provider's error text: no escapes, no secrets on the terminal."""
    from engine.findings import LLMTotals

    f = _findings()
    f.llm = LLMTotals(model="gpt-4o-mini", requests=2, stopped_because="error: 500 \x1b[2J\x1b]0;pwned\x07 key sk-proj-"
                      + "a" * 40)
    line = next(x for x in summary_lines(f) if x.startswith("halo: LLM"))
    assert "\x1b" not in line and "\x07" not in line and "sk-proj-" + "a" * 40 not in line
    assert "[REDACTED]" in line and line.startswith("halo: LLM gpt-4o-mini · 2 requests")
