"""Signatures through the orchestrator: found once by a reasoner, tracked on every later run without one,
gated "new" against a baseline that carries its traces and "emerging" against one that does not."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sigdata import DENIED, ScriptedReasoner, proposal, runs, write  # noqa: E402

from engine.findings import Findings, Signature  # noqa: E402
from engine.run import run_analysis  # noqa: E402
from engine.signatures import load_library_entries, signature_id  # noqa: E402

SID = signature_id(DENIED)


def _tests_file(path: Path, rs: list) -> Path:
    path.write_text("".join(json.dumps({"nodeid": r.nodeid, "outcome": r.outcome, "trace_ids": [r.trace_id]}) + "\n"
                            for r in rs))
    return path


def test_found_once_then_tracked_without_a_model(tmp_path: Path) -> None:
    rs = runs(12)
    traces = write(tmp_path / "pr1" / "traces.jsonl", rs)
    out, baseline = tmp_path / "out", tmp_path / "base" / "findings.json"
    model = ScriptedReasoner([proposal(DENIED, [(rs[0].trace_id, "")])])
    first = run_analysis([traces], out, reasoners=[model], baseline=baseline, update_baseline=True)
    assert model.calls == 1 and first.findings.mode(SID) is not None
    entries, _ = load_library_entries(out / "signatures.json")
    assert [(e.id, e.title, e.description) for e in entries] == [
        (SID, "Refund silently denied", "The agent promises a refund the tool denied.")]
    assert Findings.read(baseline).signatures == [DENIED]

    # no model, a fresh output directory: the baseline's library alone re-finds the mode
    again = run_analysis([traces], tmp_path / "out2", baseline=baseline)
    mode = again.findings.mode(SID)
    assert mode is not None and mode.run_count == 6 and mode.title == "Refund silently denied"
    assert mode.description == "The agent promises a refund the tool denied." and mode.details["origin"] == ["library"]
    assert SID in [e.id for e in again.findings.gate.persisting] and again.verdict == "pass"

    # the failure is fixed: the mode is resolved, still at zero model cost
    fixed = write(tmp_path / "pr2" / "traces.jsonl", runs(12, denied_every=None))
    after = run_analysis([fixed], tmp_path / "out3", baseline=baseline)
    assert after.findings.mode(SID) is None
    assert SID in [e.id for e in after.findings.gate.resolved]
    assert after.findings.signatures == [DENIED]  # still known, for the next regression


def test_previous_output_library_is_reapplied(tmp_path: Path) -> None:
    rs = runs(10)
    traces = write(tmp_path / "t.jsonl", rs)
    out = tmp_path / "out"
    run_analysis([traces], out, reasoners=[ScriptedReasoner([proposal(DENIED)])])
    plain = run_analysis([traces], out)  # same output directory, no model, no baseline
    assert plain.findings.mode(SID) is not None and plain.findings.mode(SID).source == "llm"


def _baseline(tmp_path: Path, with_traces: bool) -> Path:
    """A baseline made without any model, over clean runs (the refund policy was fine then)."""
    rs = runs(20, denied_every=None)
    traces = write(tmp_path / "base-run" / "traces.jsonl", rs)
    tests = _tests_file(tmp_path / "base-run" / "tests.jsonl", rs)
    baseline = tmp_path / "baseline" / "findings.json"
    run_analysis([traces], tmp_path / "base-out", baseline=baseline, update_baseline=True, tests_file=tests,
                 baseline_traces=with_traces)
    return baseline


def test_pr_only_signature_is_new_against_a_baseline_with_traces(tmp_path: Path) -> None:
    baseline = _baseline(tmp_path, with_traces=True)
    assert (baseline.parent / "findings.traces.jsonl.gz").is_file()
    assert (baseline.parent / "findings.tests.jsonl.gz").is_file()
    assert Findings.read(baseline).signatures == []
    rs = runs(20)
    pr = write(tmp_path / "pr" / "traces.jsonl", rs)
    out = run_analysis([pr], tmp_path / "out", baseline=baseline,
                       reasoners=[ScriptedReasoner([proposal(DENIED, [(rs[0].trace_id, "")])])])
    new = {e.id: e for e in out.findings.gate.new}
    assert SID in new and new[SID].baseline_runs == 0 and new[SID].baseline_total == 20
    assert new[SID].p_value is not None and new[SID].p_value < 0.05
    assert out.verdict == "fail" and SID in out.findings.gate.failing_ids


def test_pr_only_signature_seen_in_baseline_traces_is_not_new(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline" / "findings.json"
    rs = runs(20)
    traces = write(tmp_path / "b" / "traces.jsonl", rs)
    run_analysis([traces], tmp_path / "bo", baseline=baseline, update_baseline=True, baseline_traces=True)
    out = run_analysis([traces], tmp_path / "out", baseline=baseline, reasoners=[ScriptedReasoner([proposal(DENIED)])])
    persisting = {e.id: e for e in out.findings.gate.persisting}
    assert SID in persisting and persisting[SID].baseline_runs == 10
    assert out.verdict == "pass"


def test_pr_only_signature_is_emerging_without_baseline_traces(tmp_path: Path) -> None:
    baseline = _baseline(tmp_path, with_traces=False)
    assert not (baseline.parent / "findings.traces.jsonl.gz").exists()
    rs = runs(20)
    pr = write(tmp_path / "pr" / "traces.jsonl", rs)
    out = run_analysis([pr], tmp_path / "out", baseline=baseline,
                       reasoners=[ScriptedReasoner([proposal(DENIED, [(rs[0].trace_id, "")])])])
    assert SID not in [e.id for e in out.findings.gate.new]
    assert SID in [e.id for e in out.findings.gate.emerging]
    assert out.verdict == "pass" and SID not in out.findings.gate.failing_ids



def test_pr_only_signature_still_fails_fail_on_any(tmp_path: Path) -> None:
    """``fail-on any`` fails on every systemic mode: calling a mode emerging must not switch that off."""
    baseline = _baseline(tmp_path, with_traces=False)
    rs = runs(20)
    pr = write(tmp_path / "pr" / "traces.jsonl", rs)
    out = run_analysis([pr], tmp_path / "out", baseline=baseline, fail_on="any",
                       reasoners=[ScriptedReasoner([proposal(DENIED, [(rs[0].trace_id, "")])])])
    assert SID in [e.id for e in out.findings.gate.emerging]
    assert out.verdict == "fail" and SID in out.findings.gate.failing_ids and out.exit_code == 1

def test_unverified_mode_is_reported_never_gated(tmp_path: Path) -> None:
    baseline = _baseline(tmp_path, with_traces=True)
    pr = write(tmp_path / "pr" / "traces.jsonl", runs(20, denied_every=None))
    loose = proposal(Signature(tool_name="refund")).model_copy(
        update={"id": "fm-unsigned0001", "signature": None, "title": "Promises without a refund call"})
    out = run_analysis([pr], tmp_path / "out", baseline=baseline, reasoners=[ScriptedReasoner([loose])])
    mode = out.findings.mode("fm-unsigned0001")
    assert mode is not None and mode.verified is False
    gated = [e.id for lst in (out.findings.gate.new, out.findings.gate.emerging, out.findings.gate.persisting)
             for e in lst]
    assert "fm-unsigned0001" not in gated and out.verdict == "pass"
    assert out.findings.signatures == []


def test_rejected_proposals_are_listed(tmp_path: Path) -> None:
    rs = runs(10)
    traces = write(tmp_path / "t.jsonl", rs)
    bad = proposal({"tool_name": "refund", "regex": "refund(?=ed)"}, title="lookahead")
    out = run_analysis([traces], tmp_path / "out", reasoners=[ScriptedReasoner([bad])])
    written = Findings.read(tmp_path / "out" / "findings.json")
    assert [r.title for r in written.rejected] == ["lookahead"] and "RE2" in written.rejected[0].reason
    assert out.findings.signatures == [] and not (tmp_path / "out" / "signatures.json").exists()


def test_cli_baseline_traces_flag(tmp_path: Path, capsys) -> None:
    from engine.cli import main

    rs = runs(10)
    traces = write(tmp_path / "t.jsonl", rs)
    tests = _tests_file(tmp_path / "tests.jsonl", rs)
    baseline = tmp_path / "b" / "base.json"
    assert main(["analyze", str(traces), "--out", str(tmp_path / "o"), "--baseline", str(baseline),
                 "--baseline-traces"]) == 2
    assert "--baseline-traces needs --update-baseline" in capsys.readouterr().err
    assert main(["analyze", str(traces), "--out", str(tmp_path / "o"), "--baseline", str(baseline), "--tests",
                 str(tests), "--update-baseline", "--baseline-traces"]) == 0
    assert (tmp_path / "b" / "base.traces.jsonl.gz").is_file() and (tmp_path / "b" / "base.tests.jsonl.gz").is_file()
    from engine.traces.store import TraceStore

    kept = TraceStore.open([tmp_path / "b" / "base.traces.jsonl.gz"], cache_dir=tmp_path / "cache")
    assert kept.span_count == sum(len(r.spans) for r in rs) and set(kept.trace_ids) == {r.trace_id for r in rs}


def test_baseline_updated_without_traces_drops_stale_ones(tmp_path: Path) -> None:
    baseline = _baseline(tmp_path, with_traces=True)
    stale = baseline.parent / "findings.traces.jsonl.gz"
    assert stale.is_file()
    traces = write(tmp_path / "again" / "traces.jsonl", runs(5, denied_every=None))
    run_analysis([traces], tmp_path / "o2", baseline=baseline, update_baseline=True)
    assert not stale.exists() and not (baseline.parent / "findings.tests.jsonl.gz").exists()


def test_traces_of_another_baseline_are_not_used(tmp_path: Path) -> None:
    """Traces that do not add up to the baseline's runs say nothing about it: the mode is emerging."""
    import shutil

    baseline = _baseline(tmp_path, with_traces=True)
    other = tmp_path / "other" / "findings.json"
    small = write(tmp_path / "small" / "traces.jsonl", runs(4, denied_every=None))
    run_analysis([small], tmp_path / "so", baseline=other, update_baseline=True, baseline_traces=True)
    shutil.copy(other.parent / "findings.traces.jsonl.gz", baseline.parent / "findings.traces.jsonl.gz")
    (baseline.parent / "findings.tests.jsonl.gz").unlink()
    rs = runs(20)
    pr = write(tmp_path / "pr" / "traces.jsonl", rs)
    out = run_analysis([pr], tmp_path / "out", baseline=baseline,
                       reasoners=[ScriptedReasoner([proposal(DENIED, [(rs[0].trace_id, "")])])])
    assert SID in [e.id for e in out.findings.gate.emerging] and out.verdict == "pass"
    assert any("do not add up" in n for n in out.findings.notes)


def test_engine_rejections_and_ours_are_all_listed(tmp_path: Path) -> None:
    rs = runs(10)
    traces = write(tmp_path / "t.jsonl", rs)
    model = ScriptedReasoner(
        [proposal({"tool_name": "refund", "field": "output", "regex": "never said anywhere"}, title="ours")],
        rejected=[{"title": "engine's\x1b[2J", "reason": "unknown trace id ff", "round": 1}, {"junk": True}],
    )
    out = run_analysis([traces], tmp_path / "out", reasoners=[model])
    got = [(r.title, r.reason, r.round) for r in out.findings.rejected]
    assert got[0] == ("engine's", "unknown trace id ff", 1)  # the terminal escape is stripped
    assert got[1][0] == "ours" and got[1][1] == "signature matches nothing in the traces" and len(got) == 2


def test_one_analysis_opens_its_trace_store_once(tmp_path: Path, monkeypatch) -> None:
    """Reasoner, signatures, baseline traces and the HTML evidence viewer share one store (indexing is the cost)."""
    from engine.traces.store import TraceStore

    opened: list[list[Path]] = []
    real_open = TraceStore.open.__func__  # type: ignore[attr-defined]

    def counting_open(cls, paths, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(list(paths))
        return real_open(cls, paths, *args, **kwargs)

    monkeypatch.setattr(TraceStore, "open", classmethod(counting_open))
    rs = runs(12)
    traces = write(tmp_path / "t.jsonl", rs)
    tests = _tests_file(tmp_path / "tests.jsonl", rs)
    out = run_analysis([traces], tmp_path / "out", reasoners=[ScriptedReasoner([proposal(DENIED)])],
                       baseline=tmp_path / "base" / "findings.json", update_baseline=True, baseline_traces=True,
                       tests_file=tests)
    assert out.findings.mode(SID) is not None
    assert {"report.html", "findings.traces.jsonl.gz"} <= set(out.files)
    assert opened == [[traces]]
