"""``--halo-baseline-traces``: the baseline keeps its traces, and a signature the baseline never knew is
evaluated on them (through the plugin, with the signature library in the output directory)."""

from __future__ import annotations

import json

import pytest

SUITE = '''
from pytest_halo import trace_agent, trace_tool


@trace_tool
def lookup(order):
    return f"order {order}: refund denied by policy 7"


def support(order):
    with trace_agent("support"):
        return lookup(order)


def test_one():
    assert "denied" in support(1)


def test_two():
    assert "denied" in support(2)


def test_three():
    assert "denied" in support(3)
'''

SIG = {"tool_name": "lookup", "field": "output", "regex": r"refund denied by policy \d"}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_support=SUITE)


def test_baseline_traces_written_and_used(suite, run_halo, pytester):
    base = run_halo("--halo", "--halo-baseline", "base.json", "--halo-update-baseline", "--halo-baseline-traces")
    assert base.ret == 0, base.output()
    assert (pytester.path / "base.traces.jsonl.gz").is_file()
    assert (pytester.path / "base.tests.jsonl.gz").is_file()

    # a signature found later (here: left in the output directory's library by an earlier LLM run)
    library = {"schema_version": 1, "signatures": [{"signature": SIG, "title": "Refunds denied by policy"}]}
    (base.dir / "signatures.json").write_text(json.dumps(library))
    run = run_halo("--halo", "--halo-baseline", "base.json")
    assert run.ret == 0, run.output()
    findings = json.loads((run.dir / "findings.json").read_text())
    mode = next(m for m in findings["failure_modes"] if m["title"] == "Refunds denied by policy")
    assert mode["run_count"] == 3 and mode["detector"] == "signature"
    persisting = {e["id"]: e for e in findings["gate"]["persisting"]}
    assert persisting[mode["id"]]["baseline_runs"] == 3  # counted on the baseline's own traces


def test_without_the_flag_no_traces_are_kept(suite, run_halo, pytester):
    base = run_halo("--halo", "--halo-baseline", "base.json", "--halo-update-baseline")
    assert base.ret == 0, base.output()
    assert not (pytester.path / "base.traces.jsonl.gz").exists()
