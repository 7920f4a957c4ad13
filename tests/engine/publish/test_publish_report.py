"""report.md: a headline with tests and gate apart, root causes with facets, statistics in words, LLM section."""

from __future__ import annotations

import re

from engine.findings import (
    CodeLocation,
    DatasetSummary,
    Enrichment,
    Evidence,
    FailureMode,
    Findings,
    Gate,
    GateEntry,
    LLMTotals,
    RejectedMode,
)
from engine.findings_words import in_words, outcome_phrase
from engine.publish.report import gate_phrase, render_report

DATA = DatasetSummary(spans=247, traces=26, tests=26, failing_tests=12, passing_tests=14, runs=26, run_unit="tests")


def _mode(i: int, category: str, title: str, root: str | None = None, failing: int = 3, **kw: object) -> FailureMode:
    mid = f"fm-{i:012d}"
    return FailureMode(
        id=mid, title=title, category=category, detector=category, key=str(i), run_count=failing, test_count=failing,
        failing_test_count=failing, trace_count=failing, prevalence=failing / 26, root_cause=root or mid,
        systemic_because=[f"recurs in {failing} runs"],
        evidence=[Evidence(trace_id=f"{i:032x}", span_id=f"{i:016x}", test_nodeid=f"tests/test_a.py::test_{i}_{j}")
                  for j in range(failing)],
        **kw,  # type: ignore[arg-type]
    )


def _example_findings(gate: Gate | None = None) -> Findings:
    lead = _mode(1, "tool_error", "Tool `update_address` fails: pending_validation", example="pending_validation",
                 suggested_fix="Tell the agent what pending_validation means.",
                 enrichment=Enrichment(failing_with=3, failing_total=12, passing_with=0, passing_total=14,
                                       p_value=0.0853, q_value=0.1301))
    loop = _mode(2, "retry_loop", "Retry loop on failing tool `update_address`", root=lead.id)
    budget = _mode(3, "budget_exhaustion", "Agent exhausts its budget (max turns)", root=lead.id)
    legacy = _mode(4, "tool_error", "Tool `lookup_order` fails: unsupported order id format: '<*>'", failing=4)
    return Findings(dataset=DATA, failure_modes=[legacy, lead, loop, budget], gate=gate or Gate())


def test_headline_states_tests_and_gate_apart() -> None:
    text = render_report(_example_findings())
    assert text.splitlines()[2] == "**12 of 26 tests failed · gate: not gated — no baseline to compare with**"
    assert "Gate: PASS" not in text
    gated = Gate(baseline="base.json", persisting=[GateEntry(id="fm-000000000001", title="x")])
    assert "**12 of 26 tests failed · gate: no new failure modes vs baseline**" in render_report(_example_findings(gated))


def test_root_causes_group_facets_largest_first_with_ids_per_mode() -> None:
    text = render_report(_example_findings())
    assert "2 root causes (4 failure modes)" in text
    sections = re.findall(r"^## \d+\. (.*)$", text, flags=re.M)
    assert sections[:2] == ["Tool `lookup_order` fails: unsupported order id format: '<\\*>'",
                            "Tool `update_address` fails: pending_validation"]
    facets = text.split("## 2.")[1].split("<details>")[0]
    assert "- retry loop: Retry loop on failing tool `update_address`" in facets
    assert "- budget exhausted: Agent exhausts its budget (max turns)" in facets
    for i in (1, 2, 3, 4):
        assert f"`fm-{i:012d}`" in text  # every mode keeps its id
    assert "| 2 | Tool `update_address` fails: pending_validation | tool error, retry loop, budget exhausted | 3 of 12 |" in text


def test_statistics_in_words_and_p_values_only_in_details() -> None:
    text = render_report(_example_findings())
    assert "Seen in 3 of 12 failing tests and 0 of 14 passing" in text
    assert "in 4 of 12 failing tests and 0 of 14 passing" in text  # without enrichment: from the counts
    for m in re.finditer(r"0\.085|0\.13|p=", text):
        before = text[: m.start()]
        assert before.rfind("<details>") > before.rfind("</details>"), "a p-value outside a details block"


def test_placeholder_explained_once_and_titles_readable() -> None:
    text = render_report(_example_findings())
    assert text.count("`<*>` stands for a part that varied") == 1
    assert "\\`update_address\\`" not in text and "pending\\_validation" not in text
    assert "Traceback" not in text


def test_changes_since_baseline_follow_the_headline() -> None:
    gate = Gate(baseline="base.json", verdict="fail", failing_ids=["fm-000000000004"],
                new=[GateEntry(id="fm-000000000004", title="Tool `lookup_order` fails", candidate_runs=4,
                               candidate_total=26, p_value=0.001)],
                resolved=[GateEntry(id="fm-000000000009", title="old one", baseline_runs=4, baseline_total=10)])
    text = render_report(_example_findings(gate))
    lines = text.splitlines()
    assert lines[2] == "**12 of 26 tests failed · gate: FAILED — 1 new failure mode vs baseline**"
    assert lines[4] == "Since the baseline:"
    assert "- **New**: Tool `lookup_order` fails (`fm-000000000004`)" in text
    assert "- **Resolved**: old one (`fm-000000000009`)" in text
    assert "**new**" in text  # the mode's own status


def test_phrases() -> None:
    assert outcome_phrase(DatasetSummary(tests=5, passing_tests=5, run_unit="tests")) == "all 5 tests passed"
    assert outcome_phrase(DatasetSummary(traces=40, runs=40)) == "40 traces analysed (no test outcomes)"
    assert gate_phrase(Gate(fail_on="any", verdict="fail", failing_ids=["a", "b"])) == \
        "gate: FAILED — 2 failure modes found (fail-on any)"
    assert gate_phrase(Gate(baseline="b", verdict="fail", notes=["baseline b.json is not valid JSON"])) == \
        "gate: FAILED — baseline b.json is not valid JSON"
    hostile = gate_phrase(Gate(baseline="b", verdict="fail", notes=["emerging: fm-1 <img src=x onerror=alert(1)> @octocat"]))
    assert "\\<img" in hostile and "@octocat" not in hostile and hostile.startswith("gate: FAILED — emerging")
    assert gate_phrase(Gate(baseline="b", emerging=[GateEntry(id="x", title="t")])) == \
        "gate: no new failure modes vs baseline (1 emerging, not gated)"
    m = _mode(1, "tool_error", "t", failing=2)
    assert in_words(m, DatasetSummary(traces=40, runs=40)) == "in 2 of 40 traces"
    unknown = DatasetSummary(tests=30, failing_tests=12, passing_tests=14, run_unit="tests")
    assert in_words(m, unknown) == "in 2 of 12 failing tests (2 of 30 tests in all)"


def test_llm_section_cost_answer_rejected_and_unverified_apart() -> None:
    f = _example_findings()
    f.llm = LLMTotals(model="gpt-4o-mini", requests=12, cached=3, tokens_in=10234, tokens_out=1200, cost_usd=0.0123,
                      wall_s=34.5, stopped_because="finished")
    f.llm_answer = "The agent retries `update_address`; see [docs](http://evil.example) and ping @octocat.\n- one"
    f.rejected = [RejectedMode(title="Agent is rude", reason="no span matches the signature", round=2)]
    f.failure_modes.append(FailureMode(id="fm-llmllmllmllm", title="Agent forgets the order id", category="pattern",
                                       detector="llm", key="k", source="llm", verified=False, confidence=0.6,
                                       description="After a handoff the order id is lost."))
    both = f.failure_modes[0]
    both.source = "both"
    both.description = "The legacy ids are refused by the tool."
    text = render_report(f)
    llm = text.split("## LLM analysis")[1].split("## Gate")[0]
    assert "LLM `gpt-4o-mini` · 12 requests (3 cached) · 10,234 in / 1,200 out tokens · $0.0123 · 34.5s\n" in llm
    assert "The agent retries `update_address`" in llm and "- one" in llm
    assert "](http" not in llm and "@octocat" not in llm
    assert "- **unverified:** Agent forgets the order id (`fm-llmllmllmllm`, confidence 60%)" in llm
    assert "After a handoff the order id is lost." in llm
    assert "- Agent is rude — no span matches the signature (round 2)" in llm
    before = text.split("## LLM analysis")[0]
    assert "Agent forgets the order id" not in before  # unverified modes are kept apart
    assert "2 root causes (4 failure modes)" in before
    assert "found by the detectors and the LLM engine" in before and "The legacy ids are refused" in before


def test_untrusted_text_is_escaped_cleaned_and_fenced() -> None:
    evil = _mode(7, "tool_error", "Tool `x` fails: <img src=y> @alice [c](http://e) password=hunter \x1b[2J",
                 example="result: ```\n</details> [click](http://x) \x07ghp_abcdefghijklmnopqrstuvwxyz0123")
    evil.evidence = [Evidence(trace_id="t" * 32, span_id="s" * 16, test_nodeid="t.py::test_[a|b]")]
    text = render_report(Findings(dataset=DATA, failure_modes=[evil]))
    outside = re.sub(r"````text\n.*?\n````", "", text, flags=re.S)
    assert re.search(r"(?<!\\)<img", outside) is None and "@alice" not in text and "](http" not in outside
    assert "hunter" not in text and "ghp_" not in text and "\x1b" not in text and "\x07" not in text
    assert "````text\nresult: ```\n</details> [click](http://x) [REDACTED]\n````" in text
    assert "`t.py::test_[a|b]`" in text


def test_a_green_run_counts_tests_not_failing_ones() -> None:
    green = DatasetSummary(spans=11, traces=4, tests=4, passing_tests=4, runs=4, run_unit="tests")
    mode = _mode(1, "tool_error", "Tool `fetch_page` fails", failing=0)
    mode.test_count = mode.run_count = 3
    text = render_report(Findings(dataset=green, failure_modes=[mode]))
    assert "**all 4 tests passed · gate: not gated — no baseline to compare with**" in text
    assert "| # | Root cause | Facets | Tests | Status |" in text and "| 3 of 4 |" in text
    assert "Seen in 3 of 4 tests, all passing" in text


def test_baseline_modes_whose_tests_did_not_run_are_not_re_run_not_resolved() -> None:
    gate = Gate(baseline="base.json", resolved=[GateEntry(id="fm-000000000009", title="Tool `a` fails: x")],
                not_rerun=[GateEntry(id="fm-000000000008", title="Tool `b` fails: y",
                                     note="none of its tests ran in this run")])
    text = render_report(_example_findings(gate))
    resolved = next(line for line in text.splitlines() if line.startswith("- **Resolved**"))
    not_rerun = next(line for line in text.splitlines() if line.startswith("- **Not re-run"))
    assert "fm-000000000009" in resolved and "fm-000000000008" not in resolved
    assert "fm-000000000008" in not_rerun and "none of their tests ran" in not_rerun
    assert "**Not re-run** (1)" in text and "none of its tests ran in this run" in text  # the gate's details


def test_code_locations_shared_by_facets_are_listed_once() -> None:
    f = _example_findings()
    at = CodeLocation(path="support_agent/tools.py", line=69, kind="tool_definition", why="tool defined here")
    for m in f.failure_modes[1:]:  # the three facets of one root cause all name the tool's definition
        m.locations = [at.model_copy()]
    f.failure_modes[1].locations.append(CodeLocation(path="support_agent/tools.py", line=76, kind="error_literal",
                                                     why="raised here"))
    text = render_report(f)
    assert text.count("`support_agent/tools.py:69`") == 1 and text.count("`support_agent/tools.py:76`") == 1
