"""An output that cannot be written is said, not swallowed: one ``halo: <file> not written: <reason>`` line on the
terminal, and a note in ``findings.json`` — which is written last so that its notes can name the others."""

from __future__ import annotations

from pathlib import Path

from charge_traces import failing_charge_traces

from engine.findings import Findings
from engine.publish.html import HtmlReport
from engine.publish.outputs import FindingsFile, JUnitReport, MarkdownReport, publish_outputs
from engine.run import run_analysis


def test_findings_json_is_written_after_every_other_publisher_whatever_their_order(tmp_path: Path) -> None:
    findings = run_analysis([failing_charge_traces(tmp_path / "t.jsonl")], tmp_path / "first").findings
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "report.html").mkdir()  # a directory where the page goes: refused
    (out_dir / "junit.xml").symlink_to(tmp_path / "elsewhere.xml")
    findings.notes = []
    published = publish_outputs(findings, out_dir, [FindingsFile(), MarkdownReport(), JUnitReport(), HtmlReport()])
    assert set(published.files) == {"findings.json", "report.md"}
    assert [line.split(":")[1].strip() for line in published.failures] == ["junit.xml not written", "report.html not written"]
    assert all(line.startswith("halo: ") and "\n" not in line for line in published.failures)
    assert Findings.read(out_dir / "findings.json").notes == [line.removeprefix("halo: ") for line in published.failures]
    assert not (tmp_path / "elsewhere.xml").exists()


def test_an_analysis_whose_outputs_are_all_written_prints_no_failure_line(tmp_path: Path) -> None:
    outcome = run_analysis([failing_charge_traces(tmp_path / "t.jsonl")], tmp_path / "out")
    assert not [line for line in outcome.summary_lines if "not written" in line]
    assert {"findings.json", "report.md", "junit.xml", "report.html", "fix-brief.md"} <= set(outcome.files)
    assert not [n for n in Findings.read(tmp_path / "out" / "findings.json").notes if "not written" in n]
