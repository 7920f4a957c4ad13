"""Signature modes: counted like detector modes, checked against their evidence, merged with detector modes."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sigdata import DENIED, proposal, runs, write  # noqa: E402

from engine.analysis import assemble  # noqa: E402
from engine.analysis.config import AnalysisConfig  # noqa: E402
from engine.analysis.pipeline import analyze_paths  # noqa: E402
from engine.analysis.signature_modes import apply_signatures, proposals_from_modes  # noqa: E402
from engine.findings import FailureMode, Findings, Signature  # noqa: E402
from engine.signatures import signature_id  # noqa: E402
from engine.traces.problems import Problems  # noqa: E402
from engine.traces.store import TraceStore  # noqa: E402

CFG = AnalysisConfig()


def _setup(tmp_path: Path, rs: list) -> tuple[Findings, TraceStore]:
    path = write(tmp_path / "traces.jsonl", rs)
    findings = analyze_paths([path], config=CFG, tests=assemble.TestIndex(), problems=Problems())
    return findings, TraceStore.open([path], cache_dir=tmp_path / "cache")


def _apply(findings: Findings, store: TraceStore, modes: list) -> object:
    props, unverified = proposals_from_modes(modes)
    assert unverified == []
    return apply_signatures(findings, store, props, assemble.TestIndex(), CFG)


def test_counts_like_a_detector_mode(tmp_path: Path) -> None:
    rs = runs(12)  # runs 0, 2, ..., 10 denied and failing; the odd ones pass
    findings, store = _setup(tmp_path, rs)
    assert findings.dataset.run_unit == "tests"
    step = _apply(findings, store, [proposal(DENIED, [(rs[0].trace_id, "")])])
    mode = findings.mode(signature_id(DENIED))
    assert mode is not None and mode.source == "llm" and mode.verified
    assert (mode.run_count, mode.test_count, mode.failing_test_count, mode.trace_count) == (6, 6, 6, 6)
    assert mode.prevalence == 0.5
    assert mode.enrichment is not None and mode.enrichment.failing_with == 6 and mode.enrichment.passing_with == 0
    assert mode.enrichment.q_value < 0.05 and any("enriched" in b for b in mode.systemic_because)
    assert (mode.description, mode.confidence, mode.signature) == (
        "The agent promises a refund the tool denied.", 0.8, DENIED)
    assert mode.evidence[0].trace_id == rs[0].trace_id and mode.evidence[0].test_nodeid == rs[0].nodeid
    assert "refund denied: policy 0" in (mode.example or "")
    assert findings.observed[mode.id] == 6
    assert findings.signatures == [DENIED]
    assert step.rejected == []


def test_same_signature_twice_is_one_mode(tmp_path: Path) -> None:
    rs = runs(8)
    findings, store = _setup(tmp_path, rs)
    other_spelling = {"tool_name": " REFUND", "field": "output", "regex": r"refund denied: policy \d+"}
    _apply(findings, store, [proposal(DENIED, [(rs[0].trace_id, "")]),
                             proposal(other_spelling, [(rs[2].trace_id, "")], title="Again")])
    got = [m for m in findings.failure_modes if m.detector == "signature"]
    assert len(got) == 1 and got[0].title == "Refund silently denied"
    assert {e.trace_id for e in got[0].evidence[:2]} == {rs[0].trace_id, rs[2].trace_id}
    assert len(findings.signatures) == 1


def test_rejections_say_why(tmp_path: Path) -> None:
    rs = runs(8)
    findings, store = _setup(tmp_path, rs)
    step = _apply(findings, store, [
        proposal({"tool_name": "refund", "regex": "(unclosed"}, title="bad regex"),
        proposal({"tool_name": "refund", "field": "output", "regex": "no such text anywhere"}, title="nothing"),
        proposal(DENIED, [(rs[1].trace_id, "")], title="wrong evidence"),  # run 1 was not denied
        proposal({"tool_name": "refund"}, [("f" * 32, "")], title="made-up trace"),
    ])
    reasons = {r.title: r.reason for r in findings.rejected}
    assert "invalid signature" in reasons["bad regex"]
    assert reasons["nothing"] == "signature matches nothing in the traces"
    assert "misses its evidence" in reasons["wrong evidence"] and "none of the 1 cited" in reasons["wrong evidence"]
    assert "unknown trace ids" in reasons["made-up trace"]
    assert len(step.rejected) == 4 and not [m for m in findings.failure_modes if m.source == "llm"]
    assert findings.signatures == []


def test_merges_with_the_detector_mode_it_is(tmp_path: Path) -> None:
    rs = runs(10, denied_every=None, card_errors=6)
    findings, store = _setup(tmp_path, rs)
    detector = next(m for m in findings.failure_modes if m.detector == "tool_error")
    assert detector.run_count == 6
    sig = Signature(tool_name="pay", field="error", regex="card declined")
    step = _apply(findings, store, [proposal(sig, [(rs[3].trace_id, "")], title="Payments fail",
                                             description="The card is declined.", confidence=0.9)])
    merged = findings.mode(detector.id)
    assert merged is not None and merged.source == "both"
    assert (merged.description, merged.signature, merged.confidence) == ("The card is declined.", sig, 0.9)
    assert merged.details["llm_title"] == ["Payments fail"] and merged.run_count == 6
    assert findings.mode(signature_id(sig)) is None and step.merged == {signature_id(sig): detector.id}
    assert findings.observed[signature_id(sig)] == 6  # the signature is tracked under its own id too


def test_unrelated_runs_do_not_merge(tmp_path: Path) -> None:
    rs = runs(12, denied_every=2, card_errors=3)
    findings, store = _setup(tmp_path, rs)
    _apply(findings, store, [proposal(DENIED)])
    assert findings.mode(signature_id(DENIED)) is not None
    assert all(m.source == "detector" for m in findings.failure_modes if m.detector != "signature")


def test_rare_signature_is_a_one_off(tmp_path: Path) -> None:
    rs = runs(10, denied_every=None)
    rs[4] = runs(1, denied_every=1, first=4)[0]
    findings, store = _setup(tmp_path, rs)
    _apply(findings, store, [proposal(DENIED)])
    assert findings.mode(signature_id(DENIED)) is None
    one = next(o for o in findings.one_offs if o.id == signature_id(DENIED))
    assert one.run_count == 1 and one.reason == "seen in one run"
    assert findings.observed[signature_id(DENIED)] == 1 and findings.signatures == [DENIED]


def test_unsigned_modes_are_unverified() -> None:
    mode = proposal(DENIED).model_copy(update={"signature": None})
    props, unverified = proposals_from_modes([mode])
    assert props == [] and unverified[0].verified is False


def test_tau_bench_signature_equals_the_detector_count(corpora: Path, tmp_path: Path) -> None:
    """On real data: a signature for a detector's tool error joins it with the same run count; a new one stands."""
    path = corpora / "tau-bench-airline" / "gpt-4o-airline.json"
    findings = analyze_paths([path], config=CFG, tests=assemble.TestIndex(), problems=Problems())
    store = TraceStore.open([path], cache_dir=tmp_path / "cache")
    seats = next(m for m in findings.failure_modes if "not enough seats" in m.title)
    sig = Signature(tool_name="update_reservation_flights", field="error", regex="not enough seats on flight")
    human = Signature(tool_name="transfer_to_human_agents")
    step = _apply(findings, store, [proposal(sig, [(seats.evidence[0].trace_id, "")], title="Sold-out flights"),
                                    proposal(human, title="Hand-offs to a human")])
    assert step.merged.get(signature_id(sig)) == seats.id
    assert findings.observed[signature_id(sig)] == seats.run_count == findings.mode(seats.id).run_count
    hm = findings.mode(signature_id(human))
    assert hm is not None and hm.run_count == len(step.matches[signature_id(human)].traces) >= 2
    assert hm.failing_test_count <= hm.run_count and 0 < hm.prevalence < 1


def test_emerging_demotion_keeps_other_failures() -> None:
    from engine.analysis.baseline import compare
    from engine.findings import DatasetSummary

    def unseen(mid: str) -> FailureMode:
        return FailureMode(id=mid, title=mid, category="tool_error", detector="x", key=mid, run_count=30,
                           prevalence=0.5)

    current = Findings(failure_modes=[unseen("fm-detector"), unseen("fm-sig")], dataset=DatasetSummary(runs=60))
    base = Findings(dataset=DatasetSummary(runs=60))
    gate = compare(current, base, baseline_path=Path("b.json"), fail_on="new", alpha=0.05, unknowable={"fm-sig"})
    assert [e.id for e in gate.new] == ["fm-detector"] and [e.id for e in gate.emerging] == ["fm-sig"]
    assert gate.failing_ids == ["fm-detector"] and gate.verdict == "fail"
    gate = compare(current, base, baseline_path=Path("b.json"), fail_on="new", alpha=0.05,
                   unknowable={"fm-sig", "fm-detector"})
    assert gate.failing_ids == [] and gate.verdict == "pass"


def test_unverified_modes_are_never_gated_even_under_fail_on_any() -> None:
    from engine.analysis.baseline import compare
    from engine.findings import DatasetSummary

    loose = FailureMode(id="fm-loose", title="promises a refund", category="policy", detector="llm", key="",
                        run_count=30, prevalence=0.5, verified=False)
    current = Findings(failure_modes=[loose], dataset=DatasetSummary(runs=60))
    base = Findings(failure_modes=[loose.model_copy(update={"id": "fm-old-loose"})], dataset=DatasetSummary(runs=60))
    for fail_on in ("any", "new", "regressed"):
        gate = compare(current, base, baseline_path=Path("b.json"), fail_on=fail_on, alpha=0.05)
        assert gate.verdict == "pass" and gate.failing_ids == []
        assert not (gate.new or gate.emerging or gate.persisting or gate.resolved)


def test_library_from_a_baseline_keeps_the_model_texts(tmp_path: Path) -> None:
    from engine.analysis.signature_modes import library_from_findings

    rs = runs(10, denied_every=None, card_errors=6)
    findings, store = _setup(tmp_path, rs)
    sig = Signature(tool_name="pay", field="error", regex="card declined")
    _apply(findings, store, [proposal(sig, title="Payments fail", description="Declined cards.")])
    (entry,) = library_from_findings(findings)
    assert (entry.id, entry.title, entry.description, entry.category) == (
        signature_id(sig), "Payments fail", "Declined cards.", "llm")


def test_a_malformed_mode_is_left_for_merge_to_note() -> None:
    props, rest = proposals_from_modes([{"title": "no id or category"}])
    assert props == [] and rest == [{"title": "no id or category"}]
