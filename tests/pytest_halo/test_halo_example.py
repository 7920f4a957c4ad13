"""The support-agent example, as a user runs it: ``cd examples/support_agent && pytest --halo``."""

from __future__ import annotations

import json
import shutil

from conftest import EXAMPLE, check_loads_in_halo_engine


def test_support_agent_example_writes_five_files_and_finds_planted_modes(pytester, run_halo, halo_engine_python):
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".halo", "__pycache__"))
    run = run_halo("--halo")
    run.result.assert_outcomes(passed=14, failed=12)
    assert run.ret == 1
    for name in ("traces.jsonl", "tests.jsonl", "findings.json", "report.md", "junit.xml"):
        assert (run.dir / name).stat().st_size > 0, name
    assert len(run.tests) == 26 and sum(t["outcome"] == "failed" for t in run.tests.values()) == 12
    assert all(len(t["trace_ids"]) == 1 for t in run.tests.values())
    run.result.stdout.fnmatch_lines([
        "halo: captured * spans in 26 traces from 26 tests (12 failing)*",
        "halo: LLM analysis skipped (no model configured)",
        "*lookup_order*",
        "halo: report -> *report.md*",
    ])
    findings = json.loads((run.dir / "findings.json").read_text())
    modes = {m["title"]: m for m in findings["failure_modes"]}

    def mode(*words):
        return next(m for t, m in modes.items() if all(w in t for w in words))

    assert (mode("lookup_order")["test_count"], mode("lookup_order")["failing_test_count"]) == (4, 4)
    assert mode("cancel_order")["failing_test_count"] == 3  # a tool the model was never offered
    assert mode("update_address")["failing_test_count"] == 3  # the retry loop

    loaded = check_loads_in_halo_engine(halo_engine_python, run.dir / "traces.jsonl")
    assert loaded == {"spans": len(run.spans), "traces": 26}
