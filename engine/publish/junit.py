"""``junit.xml``: one test case per failure mode so CI dashboards show the gate like tests.

new / regressed → failure; persisting → passed (with its numbers as properties); resolved →
skipped with a message; emerging → passed with a note. With ``fail_on=any`` every systemic mode
is a failure; with ``never`` nothing is. Unverified LLM patterns are never gated, so never cases.

Names, messages and outputs come from traces: each is cleaned (``engine.sanitize``) — secrets
redacted, and control characters stripped, which XML 1.0 could not carry anyway — and made plain
(``markdown.plain_text``: no tags, mentions or links), because test-report actions (EnricoMi's,
dorny's, mikepenz's) render them into Markdown. Every case has a ``time`` (dorny's parses it) and,
when the mode was located in the code, ``file`` and ``line`` (mikepenz's annotates them).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from junit_xml import TestCase, TestSuite, to_xml_report_string

from engine.findings import FailureMode, Findings
from engine.publish.markdown import plain_text
from engine.safe_io import atomic_write_text
from engine.sanitize import clean_line

CLASSNAME = "halo.failure_modes"


def _case_name(mode_id: str, title: str) -> str:
    return f"{mode_id}: {plain_text(clean_line(title)[:150])}"


def _where(m: FailureMode) -> tuple[str | None, int | None]:
    loc = m.locations[0] if m.locations else None
    return (plain_text(loc.path), loc.line) if loc is not None else (None, None)


def build_suite(f: Findings) -> tuple[TestSuite, dict[str, dict[str, str]]]:
    """The suite plus per-case properties (junit_xml has no test-case properties; added afterwards)."""
    g = f.gate
    failing = set(g.failing_ids)
    labels = g.status_by_id()
    cases: list[TestCase] = []
    props: dict[str, dict[str, str]] = {}
    for m in f.failure_modes:
        if not m.verified:
            continue
        name = _case_name(m.id, m.title)
        path, line = _where(m)
        case = TestCase(name, classname=CLASSNAME, file=path, line=line,
                        stdout=plain_text(m.example) if m.example else None)
        status = labels.get(m.id, "unbaselined")
        msg = (
            f"{status} failure mode: {m.run_count} runs ({m.prevalence:.1%}), "
            f"{m.failing_test_count} failing tests"
        )
        if m.id in failing or (status in ("new", "regressed") and g.fail_on != "never"):
            case.add_failure_info(message=msg, output=plain_text(m.suggested_fix) if m.suggested_fix else "")
        props[name] = {
            "halo.id": m.id,
            "halo.status": status,
            "halo.category": clean_line(m.category),
            "halo.root_cause": m.root_cause or m.id,
            "halo.runs": str(m.run_count),
            "halo.failing_tests": str(m.failing_test_count),
            "halo.prevalence": f"{m.prevalence:.6f}",
        }
        cases.append(case)
    for e in g.resolved:
        name = _case_name(e.id, e.title)
        case = TestCase(name, classname=CLASSNAME)
        case.add_skipped_info(message=f"resolved: was in {e.baseline_runs}/{e.baseline_total} baseline runs, "
                                      f"now {e.candidate_runs}/{e.candidate_total}")
        props[name] = {"halo.id": e.id, "halo.status": "resolved"}
        cases.append(case)
    suite = TestSuite(
        "pytest-halo",
        cases,
        properties={"halo.verdict": g.verdict, "halo.fail_on": g.fail_on, "halo.baseline": clean_line(g.baseline or "")},
    )
    return suite, props


def render_junit(f: Findings) -> str:
    suite, props = build_suite(f)
    xml = to_xml_report_string([suite], encoding="utf-8")
    root = ET.fromstring(xml)
    for case in root.iter("testcase"):
        case.set("time", case.get("time") or "0")  # junit_xml drops a zero elapsed time; readers need one
        values = props.get(case.get("name", ""))
        if not values:
            continue
        el = ET.Element("properties")
        for k, v in values.items():
            ET.SubElement(el, "property", name=k, value=v)
        case.insert(0, el)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(findings: Findings, path: Path) -> None:
    atomic_write_text(path, render_junit(findings))
