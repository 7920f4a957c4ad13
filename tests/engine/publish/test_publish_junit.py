"""junit.xml: one case per mode — new/regressed fail, persisting pass with properties, resolved skipped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from engine.findings import DatasetSummary, FailureMode, Findings, Gate, GateEntry
from engine.publish.junit import render_junit


def _mode(i: int) -> FailureMode:
    return FailureMode(id=f"fm-00000000000{i}", title=f"mode {i} <&>", category="c", detector="d", key=str(i),
                       run_count=i, prevalence=i / 10)


def test_statuses() -> None:
    modes = [_mode(1), _mode(2), _mode(3)]
    e = lambda m: GateEntry(id=m.id, title=m.title)  # noqa: E731
    gate = Gate(baseline="b.json", new=[e(modes[0])], regressed=[e(modes[1])], persisting=[e(modes[2])],
                resolved=[GateEntry(id="fm-000000000009", title="gone", baseline_runs=5, baseline_total=10)],
                verdict="fail", failing_ids=[modes[0].id], fail_on="new")
    root = ET.fromstring(render_junit(Findings(dataset=DatasetSummary(), failure_modes=modes, gate=gate)))
    cases = {c.get("name").split(":")[0]: c for c in root.iter("testcase")}
    assert cases["fm-000000000001"].find("failure") is not None
    assert cases["fm-000000000002"].find("failure") is not None
    persisting = cases["fm-000000000003"]
    assert persisting.find("failure") is None and persisting.find("skipped") is None
    props = {p.get("name"): p.get("value") for p in persisting.iter("property")}
    assert props["halo.status"] == "persisting" and props["halo.runs"] == "3"
    skipped = cases["fm-000000000009"].find("skipped")
    assert skipped is not None and "resolved" in skipped.get("message")
    assert "mode 1 ‹&›" in cases["fm-000000000001"].get("name")  # no tags for the Markdown-rendering readers
    assert all(case.get("time") == "0" for case in cases.values())  # dorny's reporter parses it


def test_cases_are_plain_text_and_carry_the_code_location() -> None:
    from engine.findings import CodeLocation

    m = _mode(1).model_copy(update={
        "title": "Tool fails for @octocat <img src=x onerror=alert(1)> see https://evil.example/x",
        "locations": [CodeLocation(path="agent/tools.py", line=42, kind="tool_definition")],
        "suggested_fix": "ping @admin",
    })
    gate = Gate(new=[], fail_on="any", verdict="fail", failing_ids=[m.id])
    case = ET.fromstring(render_junit(Findings(failure_modes=[m], gate=gate))).find(".//testcase")
    assert case is not None
    text = case.get("name", "") + ET.tostring(case, encoding="unicode")
    assert "@octocat" not in text and "<img" not in text and "https://" not in text and "@admin" not in text
    assert (case.get("file"), case.get("line")) == ("agent/tools.py", "42")


def test_fail_on_any_fails_every_mode_never_fails_none() -> None:
    modes = [_mode(1), _mode(2)]
    any_gate = Gate(fail_on="any", verdict="fail", failing_ids=[m.id for m in modes])
    root = ET.fromstring(render_junit(Findings(failure_modes=modes, gate=any_gate)))
    assert len(list(root.iter("failure"))) == 2
    never = Gate(fail_on="never", new=[GateEntry(id=modes[0].id, title="x")], verdict="pass")
    root = ET.fromstring(render_junit(Findings(failure_modes=modes, gate=never)))
    assert list(root.iter("failure")) == []


def test_names_and_texts_are_cleaned_and_unverified_patterns_are_not_cases() -> None:
    evil = FailureMode(id="fm-00000000000e", title="login fails: password=hunter \x1b[2J\x07 ghp_abcdefghijklmnopqrstuvwxyz0123",
                       category="tool_error", detector="d", key="e", example="token=abcdefgh \x00\x1b]0;x\x07",
                       suggested_fix="rotate xoxb-abcdefghij-klmnopqrstuv", root_cause="fm-00000000000e")
    llm = FailureMode(id="fm-00000000000f", title="pattern", category="c", detector="llm", key="f", source="llm",
                      verified=False)
    gate = Gate(baseline="b.json", new=[GateEntry(id=evil.id, title=evil.title)], verdict="fail",
                failing_ids=[evil.id])
    xml = render_junit(Findings(failure_modes=[evil, llm], gate=gate))
    for secret in ("hunter", "ghp_", "abcdefgh ", "xoxb-", "\x1b", "\x07", "\x00"):
        assert secret not in xml, secret
    root = ET.fromstring(xml)
    names = [c.get("name") for c in root.iter("testcase")]
    assert names == ["fm-00000000000e: login fails: password=[REDACTED] [REDACTED]"]
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["halo.root_cause"] == "fm-00000000000e"
