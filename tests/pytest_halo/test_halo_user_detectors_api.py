"""The detector interface without pytest: checked at registration, same pass as the built-ins, ``halo analyze``."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from engine.analysis.detectors.api import DetectorSet, Hit, check_detector
from engine.analysis.findings_hooks import run_findings_hooks
from engine.analysis.pipeline import analyze_spans
from engine.cli import main
from engine.findings import FailureMode, Findings
from engine.traces import conventions
from engine.traces.span import STATUS_OK, make_span

T0 = 1_700_000_000_000_000_000


def run_spans(no: int, tool: str | None, answer: str, outcome: str) -> list[dict]:
    """One run: an LLM answer, optionally after a tool call, tagged with its test."""
    tid = f"{no + 1:032x}"
    base = {conventions.TEST_NODEID: f"tests/test_p.py::test_{no}", conventions.TEST_OUTCOME: outcome}
    spans = []
    if tool:
        spans.append(make_span(trace_id=tid, span_id=f"{no + 1:08x}00000001", parent_span_id="", name=tool,
                               start_ns=T0 + no * 10**9, end_ns=T0 + no * 10**9 + 10**6, status_code=STATUS_OK,
                               attributes={**base, "openinference.span.kind": "TOOL", "tool.name": tool,
                                           "input.value": "{}", "output.value": "20.00"}))
    spans.append(make_span(trace_id=tid, span_id=f"{no + 1:08x}00000002", parent_span_id="", name="llm",
                           start_ns=T0 + no * 10**9 + 2 * 10**6, end_ns=T0 + no * 10**9 + 3 * 10**6,
                           status_code=STATUS_OK,
                           attributes={**base, "openinference.span.kind": "LLM", "llm.model_name": "m",
                                       "output.value": answer,
                                       "llm.output_messages.0.message.role": "assistant",
                                       "llm.output_messages.0.message.content": answer}))
    return spans


RUNS = [
    *(run_spans(i, "get_price", "A mug costs $12.00.", "passed") for i in range(4)),
    *(run_spans(i, None, "A gift card costs $25.00.", "failed") for i in range(4, 7)),
]


class PriceWithoutLookup:
    name = "price_without_lookup"

    def on_run(self, run):
        if "$" in (run.final_output or "") and not run.called("get_price"):
            return [Hit(self.name, "get_price", "Agent quotes a price without calling `get_price`", "ungrounded",
                        run.final_span_id, run.final_output)]
        return []


class SeesEverySpan:
    name = "span_counter"

    def __init__(self):
        self.seen: list[tuple[str, str, str | None]] = []

    def on_span(self, span, run):
        self.seen.append((span.category, run.trace_id, run.nodeid))


def test_run_detector_hits_become_a_systemic_mode_enriched_in_failures():
    findings = analyze_spans([s for r in RUNS for s in r], detectors=DetectorSet.of([PriceWithoutLookup()]))
    mode = next(m for m in findings.failure_modes if m.detector == "price_without_lookup")
    assert (mode.run_count, mode.failing_test_count, mode.test_count) == (3, 3, 3)
    assert mode.example == "A gift card costs $25.00."
    assert {e.test_nodeid for e in mode.evidence} == {f"tests/test_p.py::test_{i}" for i in range(4, 7)}


def test_span_detector_sees_every_span_with_its_run_already_linked():
    counter = SeesEverySpan()
    analyze_spans([s for r in RUNS for s in r], detectors=DetectorSet.of([counter]))
    assert len(counter.seen) == sum(len(r) for r in RUNS)
    assert {c for c, _, _ in counter.seen} == {"tool", "llm"}
    assert all(nodeid and nodeid.endswith(str(int(tid, 16) - 1)) for _, tid, nodeid in counter.seen)


def test_registration_refuses_what_is_not_a_detector():
    class NoName:
        def on_run(self, run):
            return []

    class NoHook:
        name = "x"

    with pytest.raises(TypeError, match="non-empty str `name`"):
        check_detector(NoName())
    with pytest.raises(TypeError, match="needs `on_span"):
        check_detector(NoHook())
    with pytest.raises(ValueError, match="two detectors"):
        DetectorSet.of([PriceWithoutLookup(), PriceWithoutLookup()])


def test_a_detector_returning_junk_is_noted_and_ignored():
    class Junk:
        name = "junk"

        def on_run(self, run):
            return ["not a hit"]

    findings = analyze_spans([s for r in RUNS for s in r], detectors=DetectorSet.of([Junk(), PriceWithoutLookup()]))
    assert any("detector junk returned str, not a Hit" in n for n in findings.notes)
    assert any(m.detector == "price_without_lookup" for m in findings.failure_modes)


def test_findings_hooks_annotate_but_never_delete_or_unverify():
    def mode(i: str) -> FailureMode:
        return FailureMode(id=i, title=i, category="c", detector="d", key=i, run_count=3)

    findings = Findings(failure_modes=[mode("fm-a"), mode("fm-b")], observed={"fm-a": 3, "fm-b": 3})

    def annotate(f: Findings) -> None:
        f.failure_modes[0].suggested_fix = "check the price list"

    def delete(f: Findings) -> None:
        f.failure_modes.pop()
        f.notes.append("sneaky")

    def unverify(f: Findings) -> None:
        f.failure_modes[0].verified = False

    def shrink(f: Findings) -> None:
        f.failure_modes[1].run_count = 1

    def boom(f: Findings) -> None:
        f.failure_modes.clear()
        raise RuntimeError("hook bug")

    run_findings_hooks(findings, [("annotate", annotate), ("delete", delete), ("unverify", unverify),
                                  ("shrink", shrink), ("boom", boom)])
    assert [m.id for m in findings.failure_modes] == ["fm-a", "fm-b"]
    assert findings.failure_modes[0].suggested_fix == "check the price list" and findings.failure_modes[0].verified
    assert findings.failure_modes[1].run_count == 3 and "sneaky" not in findings.notes
    notes = "\n".join(findings.notes)
    for name in ("delete", "unverify", "shrink"):
        assert f"findings hook {name} removed or shrank" in notes
    assert "findings hook boom failed (its changes were discarded): RuntimeError: hook bug" in notes


def test_halo_analyze_loads_detector_by_module_attr(tmp_path, monkeypatch, capsys):
    traces = tmp_path / "traces.jsonl"
    traces.write_bytes(b"".join(orjson.dumps(s) + b"\n" for r in RUNS for s in r))
    (tmp_path / "mydetectors.py").write_text(textwrap.dedent('''
        from engine.analysis.detectors.api import Hit

        class Quote:
            name = "price_without_lookup"

            def on_run(self, run):
                if "$" in (run.final_output or "") and not run.called("get_price"):
                    return [Hit(self.name, "get_price", "Quotes without `get_price`", "ungrounded", run.final_span_id)]
                return None
        '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    repo = Path(__file__).resolve().parents[2] / "examples" / "custom_detector"
    code = main(["analyze", str(traces), "--out", str(out), "--detector", "mydetectors:Quote", "--fail-on", "any",
                 "--repo", str(repo)])
    assert code == 1
    findings = json.loads((out / "findings.json").read_text())
    assert [m["detector"] for m in findings["failure_modes"]] == ["price_without_lookup"]
    get_price = next(i for i, line in enumerate((repo / "price_agent.py").read_text().splitlines(), 1)
                     if line.startswith("def get_price"))
    assert findings["failure_modes"][0]["locations"][0]["path"] == "price_agent.py"
    assert findings["failure_modes"][0]["locations"][0]["line"] == get_price
    brief = json.loads((out / "fix-brief.json").read_text())
    assert brief["run_from"] == str(repo) and brief["modes"][0]["reproduce"].startswith("pytest tests/test_p.py::")
    assert main(["analyze", str(traces), "--out", str(out), "--detector", "mydetectors:Nope"]) == 2
    assert "mydetectors has no attribute Nope" in capsys.readouterr().err
    assert main(["analyze", str(traces), "--out", str(out), "--detector", "no_such_module_xyz:X"]) == 2

    # an installed distribution's entry point loads without --detector
    dist = tmp_path / "halo_prices-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: halo-prices\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pytest_halo.detectors]\nprices = mydetectors:Quote\n")
    out2 = tmp_path / "out2"
    assert main(["analyze", str(traces), "--out", str(out2), "--fail-on", "any"]) == 1
    assert [m["detector"] for m in json.loads((out2 / "findings.json").read_text())["failure_modes"]] == [
        "price_without_lookup"]
    # ... and the same detector named twice is refused
    assert main(["analyze", str(traces), "--out", str(out2), "--detector", "mydetectors:Quote"]) == 2
    assert "two detectors are named 'price_without_lookup'" in capsys.readouterr().err
    sys.modules.pop("mydetectors", None)


def test_builtin_detectors_are_written_against_the_same_interface():
    from engine.analysis.config import AnalysisConfig
    from engine.analysis.detectors.api import RunDetector, SpanDetector
    from engine.analysis.detectors.builtin import builtin_detectors

    b = builtin_detectors(AnalysisConfig())
    assert all(isinstance(check_detector(d), SpanDetector) for d in (b.tool, b.llm, b.other))
    assert len(b.run_hooks) == 5 and all(isinstance(h.__self__, RunDetector) for h in b.run_hooks)
