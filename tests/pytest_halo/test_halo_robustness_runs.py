"""Runs that meet other runs or end early: two sessions on one project, a killed run's leftovers, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

SUITE = '''
import os, time

import pytest
from pytest_halo import trace_agent, trace_tool


@trace_tool
def lookup(i):
    return f"result {i}"


@pytest.mark.parametrize("i", range(12))
def test_step(i):
    with trace_agent("support", **{"run.tag": os.environ.get("RUN_TAG", "")}):
        assert lookup(i) == f"result {i}"
        if i == 1 and os.environ.get("STOP_AT"):
            open(os.environ["STOP_AT"], "w").close()
            time.sleep(60)
        if i == 11 and os.environ.get("BARRIER"):  # runs sharing the project finish together
            open(os.environ["BARRIER"] + "-" + os.environ["RUN_TAG"], "w").close()
            deadline = time.time() + 30
            while not all(os.path.exists(os.environ["BARRIER"] + "-" + t) for t in "ab") and time.time() < deadline:
                time.sleep(0.01)
'''

# The inner project's conftest: after halo has handled a report in the controller (trylast; serially the only
# process), say so with a file. Under xdist a report the controller has not dequeued when Ctrl-C lands is lost.
CONTROLLER_SAW = '''
import os
from pathlib import Path

import pytest


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    if os.environ.get("SEEN_DIR") and not os.environ.get("PYTEST_XDIST_WORKER"):
        name = report.nodeid.rsplit("[", 1)[1].rstrip("]") + "-" + report.when
        (Path(os.environ["SEEN_DIR"]) / name).touch()
'''


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


def popen(path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=path,
                            env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the inner test never reached its stopping point"
        time.sleep(0.05)


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


@pytest.fixture
def suite(pytester: pytest.Pytester, run_halo: Any) -> Path:
    """The 12-test suite; ``run_halo`` is requested for its scrubbed environment."""
    pytester.makepyfile(test_suite=SUITE)
    return pytester.path


def test_two_concurrent_runs_on_one_project_do_not_mix(suite: Path) -> None:
    barrier = str(suite / "finishing")
    runs = [popen(suite, "--halo", "--halo-skip-analysis", *xdist, RUN_TAG=tag, BARRIER=barrier)
            for tag, xdist in (("a", ("-n", "2")), ("b", ()))]
    outputs = [p.communicate(timeout=240)[0] for p in runs]
    for proc, out in zip(runs, outputs, strict=True):
        assert proc.returncode == 0, out[-3000:]
        assert "12 passed" in out and "Error" not in out and "halo: WARNING" not in out, out[-3000:]
        assert "left by an interrupted earlier run" not in out  # a live run's parts are never swept
    spans = jsonl(suite / ".halo" / "traces.jsonl")
    tests = jsonl(suite / ".halo" / "tests.jsonl")
    run_ids = {s["attributes"]["halo.run.id"] for s in spans}
    assert len(run_ids) == 1 and len(spans) == 24  # all of one run, none of the other
    assert len({s["attributes"]["run.tag"] for s in spans if "run.tag" in s["attributes"]}) == 1
    assert len(tests) == 12 and {t["run_id"] for t in tests} == run_ids
    assert not (suite / ".halo" / "parts").exists()


def test_a_run_publishes_only_while_no_other_run_does(suite: Path) -> None:
    """Finishing waits for the directory's finish lock, so the final files come whole from one run."""
    import fcntl

    halo = suite / ".halo"
    halo.mkdir()
    with open(halo / ".finish.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another run is publishing
        proc = popen(suite, "--halo", "--halo-skip-analysis")
        deadline = time.monotonic() + 60
        while not any((halo / "parts").glob("*.index.json")):  # its capture is closed: it is finishing now
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None and not (halo / "traces.jsonl").exists() and not (halo / "tests.jsonl").exists()
    out = proc.communicate(timeout=180)[0]
    assert proc.returncode == 0, out[-3000:]
    assert len(jsonl(halo / "traces.jsonl")) == 24 and len(jsonl(halo / "tests.jsonl")) == 12


def test_parts_of_a_killed_run_are_reported_and_never_merged(suite: Path) -> None:
    marker = suite / "stopped"
    killed = popen(suite, "--halo", STOP_AT=str(marker))
    wait_for(marker, killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    parts = suite / ".halo" / "parts"
    leftovers = sorted(p.name for p in parts.iterdir())
    assert any(name.endswith("-master.jsonl") for name in leftovers), leftovers  # test 0's spans were flushed

    proc = popen(suite, "--halo", "--halo-skip-analysis")
    out = proc.communicate(timeout=240)[0]
    assert proc.returncode == 0, out[-3000:]
    swept = [x for x in out.splitlines() if "left by an interrupted earlier run" in x]
    assert len(swept) == 1 and "halo: WARNING" not in out, out[-3000:]
    spans = jsonl(suite / ".halo" / "traces.jsonl")
    assert len(spans) == 24 and len({s["attributes"]["halo.run.id"] for s in spans}) == 1
    assert not parts.exists()


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_ctrl_c_records_the_interrupted_test_and_flushes_its_spans(suite: Path, xdist: tuple[str, ...]) -> None:
    """Under xdist the worker's record of the stop is lost; the controller marks unfinished tests."""
    (suite / "conftest.py").write_text(CONTROLLER_SAW)
    marker, seen = suite / "stopped", suite / "seen"
    seen.mkdir()
    proc = popen(suite, "--halo", *xdist, STOP_AT=str(marker), SEEN_DIR=str(seen))
    wait_for(marker, proc)
    for report in ("0-teardown", "1-setup"):  # Ctrl-C only once the controller holds what the test expects of it
        wait_for(seen / report, proc)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=180)[0]  # xdist: ~30 s at load 14 (execnet waits 5 s before it interrupts a busy worker)
    assert proc.returncode == int(pytest.ExitCode.INTERRUPTED), out[-3000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out and "halo: WARNING" not in out, out[-3000:]
    assert "halo: run interrupted; analysis skipped" in out
    tests = {t["nodeid"].rsplit("[", 1)[1].rstrip("]"): t for t in jsonl(suite / ".halo" / "tests.jsonl")}
    assert tests["0"]["outcome"] == "passed"
    assert tests["1"]["outcome"] == "interrupted" and "KeyboardInterrupt" in tests["1"]["reason"]
    assert tests["1"]["spans"] == 2
    assert xdist or set(tests) == {"0", "1"}
    others = {t["outcome"] for k, t in tests.items() if k != "1"}
    # Serially nothing else was running; under xdist the other worker may have been mid-test.
    assert others == {"passed"} if not xdist else others <= {"passed", "interrupted"}, tests
    for t in tests.values():
        assert t["outcome"] != "interrupted" or t["spans"] > 0 and t["reason"], t
    spans = jsonl(suite / ".halo" / "traces.jsonl")
    interrupted = [s for s in spans if s["attributes"]["halo.test.nodeid"].endswith("[1]")]
    assert sorted(s["name"] for s in interrupted) == ["lookup", "support"]  # both spans flushed
    assert {s["attributes"]["halo.test.outcome"] for s in interrupted} == {"interrupted"}
