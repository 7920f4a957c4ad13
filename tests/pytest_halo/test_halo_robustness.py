"""Never break the user's run: halo's own I/O failures print one warning line, every test runs,
what could be written is kept, and the exit status is the tests' own (3 with ``--halo-strict``).

Each case runs a real ``pytest --halo`` session of 100 tests in a subprocess.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

SUITE = '''
import pytest
from pytest_halo import trace_agent, trace_tool


@trace_tool
def lookup(i):
    return "result " * 60


@pytest.mark.parametrize("i", range(100))
def test_step(i):
    with trace_agent("support"):
        assert lookup(i).startswith("result")
        lookup(i + 1)
'''

# Linux capability numbers: root ignores file modes unless these are dropped.
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3
_PR_CAPBSET_DROP = 24


def _respect_file_modes() -> None:
    """preexec: drop root's permission-bypassing capabilities (from the bounding set, so exec loses them)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _file_size_limit(limit: int) -> Callable[[], None]:
    """preexec: ``ulimit -f`` — writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored, as a shell's ulimit does not)."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def run_pytest(path: Path, *args: str, preexec: Callable[[], None] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A real pytest session in ``path`` (the caller's env is already scrubbed by ``run_halo``)."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=path,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)


def warnings_of(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith("halo: WARNING")]


def assert_unbroken(proc: subprocess.CompletedProcess[str], *, ret: int = 0) -> str:
    """Every test ran, one warning line, no INTERNALERROR or traceback, the expected exit status."""
    out = proc.stdout + proc.stderr
    assert "INTERNALERROR" not in out and "Traceback" not in out, out[-3000:]
    assert "100 passed" in proc.stdout, out[-3000:]
    lines = warnings_of(proc)
    assert len(lines) == 1, out[-3000:]
    assert proc.returncode == ret, out[-3000:]
    return lines[0]


def spans_in(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture
def suite(pytester: pytest.Pytester, run_halo: Any) -> Path:
    """The 100-test suite; ``run_halo`` is requested for its scrubbed environment."""
    pytester.makepyfile(test_suite=SUITE)
    return pytester.path


def test_unwritable_halo_dir_keeps_the_run_and_its_exit_status(suite: Path) -> None:
    halo = suite / ".halo"
    halo.mkdir()
    halo.chmod(0o555)
    probe = f"open({str(halo / 'probe')!r}, 'w')"
    try:
        writable = subprocess.run([sys.executable, "-c", probe], preexec_fn=_respect_file_modes,
                                  capture_output=True, timeout=30).returncode == 0
    except subprocess.SubprocessError:  # no CAP_SETPCAP to drop root's override
        writable = True
    if writable:
        halo.chmod(0o755)
        pytest.skip("this user writes into a read-only directory anyway (root without droppable capabilities)")
    try:
        proc = run_pytest(suite, "--halo", preexec=_respect_file_modes)
        line = assert_unbroken(proc)
        assert "Permission denied" in line and "analysis skipped" in line and "exit status is the tests' own" in line

        strict = run_pytest(suite, "--halo", "--halo-strict", preexec=_respect_file_modes)
        assert "--halo-strict: exit status 3" in assert_unbroken(strict, ret=3)
    finally:
        halo.chmod(0o755)
    assert list(halo.iterdir()) == []


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_halo_dir_pointing_at_a_file(suite: Path, xdist: tuple[str, ...]) -> None:
    """Under xdist the workers' write errors reach the controller: still one line."""
    target = suite / "notes.txt"
    target.write_text("the user's file\n")
    proc = run_pytest(suite, "--halo", "--halo-dir", "notes.txt", *xdist)
    line = assert_unbroken(proc)
    assert "notes.txt" in line and "no traces.jsonl written" in line
    assert target.read_text() == "the user's file\n"


def test_a_gated_run_that_loses_its_analysis_fails_closed(suite: Path) -> None:
    """Asked to gate (a baseline, or fail-on any) but no verdict: a green run exits 3, a red one stays red."""
    made = run_pytest(suite, "--halo", "--halo-baseline", "base.json", "--halo-update-baseline")
    assert made.returncode == 0 and (suite / "base.json").is_file(), made.stdout[-2000:]
    (suite / "notes.txt").write_text("the user's file\n")
    for gate in (("--halo-baseline", "base.json"), ("--halo-fail-on", "any")):
        proc = run_pytest(suite, "--halo", "--halo-dir", "notes.txt", *gate)
        line = assert_unbroken(proc, ret=3)
        assert "the gate could not run: a passing run fails closed (exit status 3)" in line
    never = run_pytest(suite, "--halo", "--halo-dir", "notes.txt", "--halo-baseline", "base.json",
                       "--halo-fail-on", "never")  # reporting only: the tests' own status
    assert "exit status is the tests' own" in assert_unbroken(never)


def test_file_size_limit_mid_run_keeps_the_spans_written_before(suite: Path) -> None:
    limit = 96 * 1024  # the part file passes it after about a third of the tests
    proc = run_pytest(suite, "--halo", preexec=_file_size_limit(limit))
    line = assert_unbroken(proc)
    assert "File too large" in line and "spans lost" in line
    spans = spans_in(suite / ".halo" / "traces.jsonl")  # every kept line is whole JSON
    per_test = Counter(s["attributes"]["halo.test.nodeid"] for s in spans)
    assert 10 < len(per_test) < 100, per_test
    assert all(n == 3 for n in list(per_test.values())[:-1])  # whole tests; the last may be cut mid-write
    assert all(s["attributes"]["halo.test.outcome"] == "passed" for s in spans)
    records = [orjson.loads(x) for x in (suite / ".halo" / "tests.jsonl").read_bytes().splitlines()]
    assert len(records) == 100 and {r["outcome"] for r in records} == {"passed"}

    strict = run_pytest(suite, "--halo", "--halo-strict", preexec=_file_size_limit(limit))
    assert_unbroken(strict, ret=3)


def test_failing_merge_leaves_a_green_run_green(suite: Path) -> None:
    (suite / ".halo" / "traces.jsonl").mkdir(parents=True)  # the merged file cannot be put in place
    proc = run_pytest(suite, "--halo", "-n", "2")  # two part files to merge
    line = assert_unbroken(proc)
    assert "traces.jsonl" in line and "spans stay in" in line
    records = [orjson.loads(x) for x in (suite / ".halo" / "tests.jsonl").read_bytes().splitlines()]
    assert len(records) == 100  # tests.jsonl is still written

    # The kept parts belong to runs that ended: the next run reports and removes them, merging none.
    (suite / ".halo" / "traces.jsonl").rmdir()
    after = run_pytest(suite, "--halo", "--halo-skip-analysis")
    assert after.returncode == 0 and not warnings_of(after), after.stdout[-2000:]
    swept = [x for x in after.stdout.splitlines() if "left by an interrupted earlier run" in x]
    assert len(swept) == 1
    spans = spans_in(suite / ".halo" / "traces.jsonl")
    assert len(spans) == 300 and len({s["attributes"]["halo.run.id"] for s in spans}) == 1
    assert not (suite / ".halo" / "parts").exists()


def test_the_quick_start_install_can_run_the_example_with_xdist() -> None:
    """The example's README runs ``pytest --halo -n 2`` after ``pip install -e ".[agents]"``."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    agents = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["agents"]
    assert "pytest --halo -n 2" in (root / "examples" / "support_agent" / "README.md").read_text()
    assert any(req.replace(" ", "").startswith("pytest-xdist") for req in agents), agents
