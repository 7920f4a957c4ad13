"""Root causes: modes that share their runs form one group with facets; the grouping is deterministic."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.analysis.root_causes import assign_root_causes, group_root_causes
from engine.findings import FailureMode
from engine.root_cause_groups import groups

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "support_agent"


def _mode(i: str, category: str, runs: set[str], failing: int | None = None) -> tuple[FailureMode, set[str]]:
    m = FailureMode(
        id=f"fm-{i:0>12}", title=f"{category} {i}", category=category, detector=category, key=i,
        run_count=len(runs), failing_test_count=len(runs) if failing is None else failing,
    )
    return m, runs


def _runs(*names: int) -> set[str]:
    return {f"t{n}" for n in names}


def _grouping(pairs: list[tuple[FailureMode, set[str]]]) -> dict[str, str]:
    return group_root_causes([m for m, _ in pairs], {m.id: r for m, r in pairs})


def test_a_tool_error_its_retry_loop_and_budget_exhaustion_are_one_root_cause() -> None:
    error = _mode("a", "tool_error", _runs(1, 2, 3))
    loop = _mode("b", "retry_loop", _runs(1, 2, 3))
    budget = _mode("c", "budget_exhaustion", _runs(1, 2, 3))
    other = _mode("d", "hallucinated_tool", _runs(4, 5, 6))
    lead = _grouping([budget, loop, other, error])
    assert lead == {error[0].id: error[0].id, loop[0].id: error[0].id, budget[0].id: error[0].id,
                    other[0].id: other[0].id}


def test_a_consequence_inside_a_larger_cause_joins_it() -> None:
    # the tool fails in 10 runs; 3 of them end in the turn limit
    error = _mode("a", "tool_error", _runs(*range(10)))
    budget = _mode("b", "budget_exhaustion", _runs(0, 1, 2))
    assert _grouping([error, budget])[budget[0].id] == error[0].id


def test_a_cause_inside_another_cause_stays_apart_unless_they_share_their_runs() -> None:
    big = _mode("a", "tool_error", _runs(*range(10)))
    small = _mode("b", "tool_error", _runs(0, 1, 2))
    assert _grouping([big, small])[small[0].id] == small[0].id
    twin = _mode("c", "hallucinated_tool", _runs(*range(9)))  # 9 of 10 shared: Jaccard 0.9
    assert _grouping([big, twin])[twin[0].id] == big[0].id


def test_partial_overlap_and_single_shared_runs_do_not_group() -> None:
    a = _mode("a", "tool_error", _runs(1, 2, 3, 4))
    b = _mode("b", "retry_loop", _runs(3, 4, 5, 6))  # half inside: not a consequence
    c = _mode("c", "budget_exhaustion", _runs(1, 9))  # one shared run is a coincidence
    lead = _grouping([a, b, c])
    assert lead[b[0].id] == b[0].id and lead[c[0].id] == c[0].id


def test_contrastive_signals_never_join_by_containment_and_never_lead_a_cause() -> None:
    error = _mode("a", "tool_error", _runs(1, 2, 3, 4, 5))
    signal = _mode("b", "contrastive", _runs(1, 2))
    assert _grouping([error, signal])[signal[0].id] == signal[0].id
    # sharing all runs, the cause still leads
    same = _mode("c", "contrastive", _runs(1, 2, 3, 4, 5), failing=9)
    assert _grouping([same, error])[same[0].id] == error[0].id


def test_grouping_is_independent_of_input_order() -> None:
    pairs = [
        _mode("a", "tool_error", _runs(1, 2, 3)),
        _mode("b", "retry_loop", _runs(1, 2, 3)),
        _mode("c", "repeated_call", _runs(1, 2, 3)),
        _mode("d", "budget_exhaustion", _runs(1, 2, 3, 7)),
        _mode("e", "refusal", _runs(4, 5)),
        _mode("f", "tool_error", _runs(4, 5, 6)),
    ]
    first = _grouping(pairs)
    for perm in itertools.permutations(pairs):
        assert _grouping(list(perm)) == first


def test_groups_view_orders_lead_first_and_largest_first() -> None:
    pairs = [
        _mode("a", "refusal", _runs(7, 8)),
        _mode("b", "retry_loop", _runs(1, 2, 3)),
        _mode("c", "tool_error", _runs(1, 2, 3)),
        _mode("d", "contrastive", _runs(*range(20))),
    ]
    modes = [m for m, _ in pairs]
    assign_root_causes(modes, {m.id: r for m, r in pairs})
    view = groups(modes)
    assert [[m.id for m in g] for g in view] == [
        ["fm-00000000000c", "fm-00000000000b"],  # the cause leads its facet
        ["fm-00000000000a"],
        ["fm-00000000000d"],  # contrastive-only groups last, however large
    ]
    # a mode without root_cause (an LLM proposal merged later) is a group of its own
    extra = FailureMode(id="fm-llm", title="x", category="tool_error", detector="llm", key="x", failing_test_count=1)
    assert ["fm-llm"] in [[m.id for m in g] for g in groups([*modes, extra])]


def _run_example(tmp_path: Path) -> tuple[Path, str]:
    pytest.importorskip("agents", reason="the example needs the openai-agents extra")
    work = tmp_path / "support_agent"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns(".halo", "__pycache__", ".pytest_cache"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HALO_"))}
    done = subprocess.run([sys.executable, "-m", "pytest", "--halo", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=120)
    return work / ".halo", done.stdout


def test_bundled_example_shows_its_four_planted_defects_as_four_root_causes(tmp_path: Path) -> None:
    halo, stdout = _run_example(tmp_path)
    findings = json.loads((halo / "findings.json").read_text())
    if not findings["failure_modes"]:
        pytest.fail("the example produced no failure modes: " + json.dumps(findings["dataset"]))
    leads: dict[str, list[str]] = {}
    for m in findings["failure_modes"]:
        leads.setdefault(m["root_cause"], []).append(m["title"])
    assert len(leads) == 4, leads  # lookup_order legacy ids, cancel_order, update_address loop, chargeback refusal
    by_lead = {findings_title: titles for findings_title, titles in leads.items()}
    address = next(titles for titles in by_lead.values() if any("update_address" in t for t in titles))
    assert len(address) >= 3  # the tool error, its retry loop / repeated calls and the budget exhaustion
    report = (halo / "report.md").read_text()
    assert "**12 of 26 tests failed · gate: not gated — no baseline to compare with**" in report
    assert "4 root causes" in report
    assert "in 4 of 12 failing tests and 0 of 14 passing" in report
    assert "Traceback (most recent call last)" not in report
    terminal = [line for line in stdout.splitlines() if line.startswith(("halo:", "  "))]
    assert "halo: 12 of 26 tests failed · gate: not gated — no baseline to compare with (fail-on=new)" in terminal
    assert any(line.startswith("halo: 4 root causes (") for line in terminal), terminal
