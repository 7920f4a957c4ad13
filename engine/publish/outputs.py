"""The default publishers (``findings.json``, ``report.md``, ``junit.xml``) and the one way to run a set of them.

``publish_outputs`` writes ``findings.json`` last, so its notes name every other output that could
not be written; each failure is also one terminal line. A failing publisher never costs the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.findings import Findings
from engine.publish.base import Publisher, check_publisher
from engine.sanitize import clean_line

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
    """Every output written after an analysis (``publish_outputs`` runs ``findings.json`` last whatever the order)."""
    from engine.publish.llm_report import LLMReport

    return [check_publisher(p) for p in (MarkdownReport(), JUnitReport(), LLMReport(), FindingsFile())]


@dataclass
class Published:
    """What a set of publishers wrote, and one terminal line per output that was not written."""

    files: dict[str, Path] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # "halo: <file> not written: <reason>"


def publish_outputs(findings: Findings, out_dir: Path, publishers: Sequence[Publisher]) -> Published:
    """Run every publisher, ``findings.json`` last; a failure is a note in the findings and a line, never a raise."""
    done = Published()
    for publisher in sorted(publishers, key=lambda p: p.name == FINDINGS_FILE):  # stable: the rest keep their order
        try:
            done.files.update(publisher.publish(findings, out_dir))
        except Exception as exc:  # noqa: BLE001 - one output lost, never the others nor the run
            first = (str(exc).strip().splitlines() or [""])[0]
            reason = clean_line(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
            name = clean_line(publisher.name)
            findings.notes.append(f"{name} not written: {reason}")
            done.failures.append(f"halo: {name} not written: {reason}")
    return done
