"""The plugin's gate fails closed: a ``--halo-baseline`` that was given but cannot be used stops the session
before any test runs, with one line and a non-zero exit — even without ``--halo-strict``, even with
``--halo-fail-on never``. Before, it printed "no baseline; verdict PASS" or "analysis failed" and exited 0."""

from __future__ import annotations

import os

import pytest

SUITE = '''
from pytest_halo import trace_tool


@trace_tool
def lookup(order):
    return "shipped"


def test_one():
    assert lookup(1) == "shipped"


def test_two():
    assert lookup(2) == "shipped"
'''

BAD = {
    "mistyped path": (None, "base.jsn does not exist (create it with --halo-update-baseline"),
    "empty object": (b"{}", "is not a halo findings file (no schema_version and dataset)"),
    "truncated": (b'{"schema_version": 1, "dataset": {"runs": 2}, "failure_mo', "is not valid JSON (truncated?)"),
    "foreign JSON": (b'{"resourceSpans": [{"scopeSpans": []}]}', "is not a halo findings file"),
    "wrong schema": (b'{"schema_version": 2, "dataset": {}}', "has schema_version 2; this halo reads schema_version 1"),
}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)


def _the_error_line(output: str, needle: str) -> str:
    lines = [x for x in output.splitlines() if "halo:" in x and "baseline" in x]
    assert len(lines) == 1, output
    assert needle in lines[0] and "Traceback" not in output and "validation error" not in output, output
    return lines[0]


@pytest.mark.parametrize("case", sorted(BAD))
def test_an_unusable_baseline_stops_the_run_before_any_test(case: str, suite, run_halo, pytester) -> None:
    content, needle = BAD[case]
    name = "base.jsn" if content is None else "base.json"
    if content is not None:
        (pytester.path / name).write_bytes(content)
    variants = [(), ("--halo-strict",), ("--halo-fail-on", "never")] if case == "empty object" else [()]
    for extra in variants:
        run = run_halo("--halo", "--halo-baseline", name, *extra)
        assert run.ret == pytest.ExitCode.USAGE_ERROR, run.output()
        _the_error_line(run.output() + run.result.stderr.str(), needle)
        assert run.tests == {}  # refused before any test ran


def test_a_fifo_baseline_is_refused_at_once(suite, run_halo, pytester) -> None:
    os.mkfifo(pytester.path / "base.json")
    run = run_halo("--halo", "--halo-baseline", "base.json", timeout=60)  # today: hangs
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    _the_error_line(run.output() + run.result.stderr.str(), "is a FIFO, not a regular file")


def test_update_baseline_creates_it_and_later_runs_gate_on_it(suite, run_halo, pytester) -> None:
    first = run_halo("--halo", "--halo-baseline", "ci/base.json", "--halo-update-baseline")
    assert first.ret == 0 and (pytester.path / "ci" / "base.json").is_file(), first.output()
    again = run_halo("--halo", "--halo-baseline", "ci/base.json")
    assert again.ret == 0 and "baseline" in again.output()
    assert not [p for p in (pytester.path / "ci").iterdir() if p.name.endswith(".tmp")]


SPOILER = '''
from pathlib import Path

from pytest_halo import trace_tool


@trace_tool
def lookup(order):
    return "shipped"


def test_spoils_the_baseline():
    assert lookup(1) == "shipped"
    Path("base.json").write_text('{"schema_version": 1, "dataset": {"ru')  # truncated while the run goes on
'''


def test_a_baseline_that_goes_bad_during_the_run_still_fails_closed(run_halo, pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    first = run_halo("--halo", "--halo-baseline", "base.json", "--halo-update-baseline")
    assert first.ret == 0
    (pytester.path / "test_suite.py").unlink()
    pytester.makepyfile(test_spoil=SPOILER)
    run = run_halo("--halo", "--halo-baseline", "base.json")
    assert run.ret == 3, run.output()  # the tests passed; a gate that could not run never passes them
    assert "halo: the baseline became unusable during the run: exit status 3" in run.output()
    assert len([x for x in run.output().splitlines() if "is not valid JSON" in x]) == 1
