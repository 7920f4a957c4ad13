"""report.md: escaped untrusted text, fenced excerpts that cannot be closed, the gate section."""

from __future__ import annotations

import re

from engine.findings import DatasetSummary, Evidence, FailureMode, Findings, Gate, GateEntry
from engine.publish.report import md_code_block, md_escape, render_report


def test_md_escape_neutralises_markup() -> None:
    evil = "x](http://evil.example) ![img](a) <script>alert(1)</script> @alice | col\nnext `code` www.evil.com"
    out = md_escape(evil)
    for raw in ("](", "![", "<script>", "@alice", "| col", "`code`", "http://", "www.evil"):
        assert re.search(r"(?<!\\)" + re.escape(raw), out) is None, raw
    assert "\n" not in out


def test_code_block_fence_outlasts_content() -> None:
    block = md_code_block("before\n````\nafter")
    fence = block.split("text", 1)[0]
    assert fence == "`````" and block.endswith("\n`````")


def _findings() -> Findings:
    m = FailureMode(
        id="fm-000000000001", title="Tool `x` fails: <img src=y>", category="tool_error", detector="tool_error",
        key="k", run_count=3, failing_test_count=2, test_count=3, trace_count=3, prevalence=0.3,
        evidence=[Evidence(trace_id="t" * 32, span_id="s" * 16, test_nodeid="t.py::test_[a|b]")],
        example="result: ```\n</details> [click](http://x)", suggested_fix="Do *this*",
    )
    gate = Gate(baseline="base.json", new=[GateEntry(id=m.id, title=m.title, candidate_runs=3, candidate_total=10,
                                                      p_value=0.001)],
                resolved=[GateEntry(id="fm-000000000002", title="old one", baseline_runs=4, baseline_total=10)],
                verdict="fail", failing_ids=[m.id])
    return Findings(dataset=DatasetSummary(spans=10, traces=3, runs=10, run_unit="tests", tests=10),
                    failure_modes=[m], gate=gate)


def test_report_sections_and_escaping() -> None:
    text = render_report(_findings())
    assert "**Gate: FAIL**" in text and "## Gate" in text and "**New** (1)" in text and "**Resolved** (1)" in text
    assert re.search(r"(?<!\\)<img", text) is None and "\\<img src=y\\>" in text
    assert "t.py\\:\\:test\\_\\[a\\|b\\]" in text
    assert "````text\nresult: ```\n</details> [click](http://x)\n````" in text  # raw only inside the fence
    assert "| 1 | `fm-000000000001` |" in text
