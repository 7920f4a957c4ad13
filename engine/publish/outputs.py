"""The default publishers: ``findings.json``, ``report.md`` and ``junit.xml``."""

from __future__ import annotations

from pathlib import Path

from engine.findings import Findings
from engine.publish.base import Publisher, check_publisher

FINDINGS_FILE = "findings.json"
REPORT_FILE = "report.md"
JUNIT_FILE = "junit.xml"


class FindingsFile:
    name = FINDINGS_FILE

    def publish(self, findings: Findings, out_dir: Path) -> dict[str, Path]:
        path = out_dir / FINDINGS_FILE
        findings.write(path)
        return {FINDINGS_FILE: path}


class MarkdownReport:
    name = REPORT_FILE

    def publish(self, findings: Findings, out_dir: Path) -> dict[str, Path]:
        from engine.publish.report import write_report

        path = out_dir / REPORT_FILE
        write_report(findings, path)
        return {REPORT_FILE: path}


class JUnitReport:
    name = JUNIT_FILE

    def publish(self, findings: Findings, out_dir: Path) -> dict[str, Path]:
        from engine.publish.junit import write_junit

        path = out_dir / JUNIT_FILE
        write_junit(findings, path)
        return {JUNIT_FILE: path}


def default_publishers() -> list[Publisher]:
    """Every output written after an analysis, in order (``findings.json`` first: the others may fail)."""
    from engine.publish.llm_report import LLMReport

    return [check_publisher(p) for p in (FindingsFile(), MarkdownReport(), JUnitReport(), LLMReport())]
