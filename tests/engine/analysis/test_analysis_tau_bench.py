"""Acceptance on real data: 200 GPT-4o tau-bench airline runs (50 tasks x 4 trials), read in place.

Expectations are derived from the raw transcripts here, independently of the detectors: which
tool-error families recur, which runs repeat an identical call. Then the gate: a baseline of
trials 0-1 vs a candidate of trials 2-3 shows no new mode; planting one recurring tool failure
in a third of the candidate runs shows exactly that new mode and fails the gate.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from engine.analysis.templates import template_of
from engine.findings import Findings, mode_id
from engine.run import run_analysis

PLANTED = "Error: payment gateway timeout after 30s"
PLANTED_TOOL = "get_user_details"


def _corpus(corpora: Path) -> Path:
    path = corpora / "tau-bench-airline" / "gpt-4o-airline.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def _nodeid(rec: dict) -> str:
    return f"tau-bench-airline::task_{rec['task_id']}::trial_{rec['trial']}"


def _tool_messages(rec: dict):
    for m in rec["traj"]:
        if m.get("role") == "tool":
            yield m


@pytest.fixture(scope="module")
def records(corpora: Path) -> list[dict]:
    return json.loads(_corpus(corpora).read_bytes())


@pytest.fixture(scope="module")
def full(corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Findings, Path]:
    out = tmp_path_factory.mktemp("tau_full")
    outcome = run_analysis([_corpus(corpora)], out)
    return outcome.findings, out


def test_recurring_tool_error_families_surface_with_evidence(records: list[dict], full) -> None:
    findings, out = full
    runs_by_family: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rec in records:
        for m in _tool_messages(rec):
            if str(m.get("content", "")).startswith("Error:"):
                runs_by_family[(m["name"], template_of(m["content"]))].add(_nodeid(rec))
    recurring = {k: v for k, v in runs_by_family.items() if len(v) >= 2}
    assert len(recurring) >= 5  # the corpus really has several recurring families
    modes = {m.id: m for m in findings.failure_modes}
    report = (out / "report.md").read_text()
    for (tool, tmpl), nodeids in recurring.items():
        m = modes.get(mode_id("tool_error", f"{tool}\x1f{tmpl}"))
        assert m is not None, f"missing tool-error family {tool}: {tmpl}"
        assert m.run_count == len(nodeids) and m.test_count == len(nodeids)
        assert m.evidence and {e.test_nodeid for e in m.evidence} <= nodeids
        assert m.example and "Error:" in m.example
        assert f"`{m.id}`" in report
    one_off_families = {k for k, v in runs_by_family.items() if len(v) == 1}
    one_off_ids = {o.id for o in findings.one_offs}
    for tool, tmpl in one_off_families:
        assert mode_id("tool_error", f"{tool}\x1f{tmpl}") in one_off_ids


def test_repeated_call_patterns_surface(records: list[dict], full) -> None:
    findings, _ = full
    runs_by_tool: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        seen: dict[tuple[str, str], int] = defaultdict(int)
        for m in rec["traj"]:
            for tc in m.get("tool_calls") or []:
                fn = tc["function"]
                args = json.dumps(json.loads(fn["arguments"] or "{}"), sort_keys=True)
                seen[(fn["name"], args)] += 1
        for (tool, _), n in seen.items():
            if n >= 2:
                runs_by_tool[tool].add(_nodeid(rec))
    expected = {tool: runs for tool, runs in runs_by_tool.items() if len(runs) >= 2}
    assert expected
    got = {m.key: m for m in findings.failure_modes if m.detector == "repeated_call"}
    assert set(got) == set(expected)
    for tool, runs in expected.items():
        assert got[tool].run_count == len(runs)
        assert {e.test_nodeid for e in got[tool].evidence} <= runs


def test_dataset_summary_counts_real_outcomes(records: list[dict], full) -> None:
    findings, out = full
    d = findings.dataset
    assert d.tests == d.runs == len(records) == d.traces and d.run_unit == "tests"
    assert d.failing_tests == sum(1 for r in records if r["reward"] < 1)
    assert json.loads((out / "findings.json").read_text())["schema_version"] == 1


def _split(records: list[dict], tmp: Path, plant: bool) -> tuple[Path, Path, set[str]]:
    base = [r for r in records if r["trial"] in (0, 1)]
    cand = json.loads(json.dumps([r for r in records if r["trial"] in (2, 3)]))
    planted: set[str] = set()
    if plant:
        want = -(-len(cand) // 3)  # a third of the candidate runs, deterministically: first by (task, trial)
        for rec in sorted(cand, key=lambda r: (r["task_id"], r["trial"])):
            if len(planted) >= want:
                break
            msg = next((m for m in _tool_messages(rec) if m.get("name") == PLANTED_TOOL), None)
            if msg is not None:
                msg["content"] = PLANTED
                planted.add(_nodeid(rec))
    bpath, cpath = tmp / "baseline-airline.json", tmp / "candidate-airline.json"
    bpath.write_text(json.dumps(base))
    cpath.write_text(json.dumps(cand))
    return bpath, cpath, planted


def test_trial_split_yields_no_new_mode(records: list[dict], tmp_path: Path) -> None:
    bpath, cpath, _ = _split(records, tmp_path, plant=False)
    baseline = tmp_path / "baseline.json"
    first = run_analysis([bpath], tmp_path / "b", baseline=baseline, update_baseline=True)
    assert baseline.is_file() and first.findings.failure_modes
    outcome = run_analysis([cpath], tmp_path / "c", baseline=baseline, fail_on="new")
    gate = outcome.findings.gate
    assert gate.new == [], [e.title for e in gate.new]
    assert gate.persisting and gate.verdict == "pass" and outcome.exit_code == 0


def test_planted_recurring_failure_is_exactly_the_new_mode(records: list[dict], tmp_path: Path) -> None:
    bpath, cpath, planted = _split(records, tmp_path, plant=True)
    assert len(planted) == 34
    baseline = tmp_path / "baseline.json"
    run_analysis([bpath], tmp_path / "b", baseline=baseline, update_baseline=True)
    outcome = run_analysis([cpath], tmp_path / "c", baseline=baseline, fail_on="new")
    gate = outcome.findings.gate
    expected = mode_id("tool_error", f"{PLANTED_TOOL}\x1f{template_of(PLANTED)}")
    assert [e.id for e in gate.new] == [expected]
    assert gate.verdict == "fail" and outcome.exit_code == 1 and gate.failing_ids == [expected]
    mode = outcome.findings.mode(expected)
    assert mode is not None and mode.run_count == len(planted)
    assert {e.test_nodeid for e in mode.evidence} <= planted
    junit = (tmp_path / "c" / "junit.xml").read_text()
    assert junit.count("<failure") == 1 and expected in junit
