"""Capture under load and across threads: bounded memory per test, thread spans credited to the
test that started the work, published failure reasons sanitized, a closed stdout is not our traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

MANY_SPANS = '''
from opentelemetry import trace
from pytest_halo import trace_agent, trace_tool

SPANS = 60_000


@trace_tool
def lookup(i):
    return "result " * 20


def test_many_spans():
    tracer = trace.get_tracer("load")
    for t in range(SPANS // 200):
        with tracer.start_as_current_span("agent run"):
            for i in range(99):
                with tracer.start_as_current_span("tool call", attributes={"tool.name": "t", "output.value": "x" * 200}):
                    pass
        with trace_agent("support"):
            for i in range(99):
                lookup(i)
'''

# One pytest in a child; prints the child's peak RSS (KiB).
MEASURE = '''
import json, resource, subprocess, sys
proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *sys.argv[1:]],
                      capture_output=True, text=True)
print(json.dumps({"rc": proc.returncode, "kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "out": proc.stdout[-2000:]}))
'''


def peak_rss_mb(path: Path, *args: str) -> float:
    out = subprocess.run([sys.executable, "-c", MEASURE, *args], cwd=path, capture_output=True, text=True,
                         timeout=180, check=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got["rc"] == 0, got["out"]
    return float(got["kib"]) / 1024


def test_memory_of_a_test_emitting_many_spans_is_bounded(pytester: pytest.Pytester, run_halo: Any) -> None:
    """60k spans in one test: halo's extra peak memory stays far below the spans' size (~25 MB of JSON)."""
    pytester.makepyfile(test_load=MANY_SPANS)
    plain = peak_rss_mb(pytester.path)
    halo = peak_rss_mb(pytester.path, "--halo", "--halo-skip-analysis")
    assert halo - plain < 40, (plain, halo)
    lines = (pytester.path / ".halo" / "traces.jsonl").read_bytes().splitlines()
    assert len(lines) == 60_000
    assert all(b'"halo.test.outcome":"passed"' in line for line in lines[::997])


THREADS = '''
import threading
from concurrent.futures import ThreadPoolExecutor

from opentelemetry import trace

tracer = trace.get_tracer("app")
released = threading.Event()
finished = threading.Event()
POOL = ThreadPoolExecutor(max_workers=1)  # its worker thread is started by test_c, reused by test_d


def late_work():
    released.wait(60)
    with tracer.start_as_current_span("late-from-a"):
        with tracer.start_as_current_span("late-child-from-a"):
            pass
    finished.set()


def pooled(name):
    with tracer.start_as_current_span(name):
        pass


def test_a_starts_a_thread():
    threading.Thread(target=late_work).start()  # its spans begin and end while test_b runs


def test_b_runs_when_the_thread_works():
    released.set()
    assert finished.wait(60)
    with tracer.start_as_current_span("b-own"):
        pass


def test_c_submits():
    POOL.submit(pooled, "pool-from-c").result()


def test_d_submits():
    POOL.submit(pooled, "pool-from-d").result()
'''


def test_spans_of_a_thread_belong_to_the_test_that_started_it(pytester: pytest.Pytester, run_halo: Any) -> None:
    pytester.makepyfile(test_threads=THREADS)
    run = run_halo("--halo", "--halo-skip-analysis")
    assert run.ret == 0, run.output()
    owner = {s["name"]: s["attributes"]["halo.test.nodeid"].rsplit("::", 1)[1] for s in run.spans}
    assert owner == {"late-from-a": "test_a_starts_a_thread", "late-child-from-a": "test_a_starts_a_thread",
                     "b-own": "test_b_runs_when_the_thread_works",
                     "pool-from-c": "test_c_submits", "pool-from-d": "test_d_submits"}
    late = [s for s in run.spans if s["name"].startswith("late")]
    assert {s["attributes"]["halo.test.outcome"] for s in late} == {"passed"}
    assert {s["attributes"]["halo.test.phase"] for s in late} == {"call"}
    assert run.tests["test_threads.py::test_a_starts_a_thread"]["spans"] == 2
    assert run.tests["test_threads.py::test_b_runs_when_the_thread_works"]["spans"] == 1


SECRETS = '''
def test_leaks_a_key():
    token = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2"
    assert token == "\\x1b[2J\\x07expected", f"password=hunter2hunter2 token {token}"
'''


def test_tests_jsonl_reasons_are_redacted_and_stripped(pytester: pytest.Pytester, run_halo: Any) -> None:
    pytester.makepyfile(test_secret=SECRETS)
    run = run_halo("--halo", "--halo-skip-analysis")
    assert run.ret == 1
    raw = (run.dir / "tests.jsonl").read_text()
    reason = json.loads(raw)["reason"]
    assert reason and "hunter2hunter2" not in raw and "A1b2C3d4E5f6G7h8I9j0K1l2" not in raw
    assert "\x1b" not in reason and "\x07" not in reason and "\\u001b" not in raw and "\\u0007" not in raw


BROKEN_PIPE_CONFTEST = '''
import pytest


class ReaderGone:
    """A terminal whose reader went away (``pytest --halo | head``): every write is a broken pipe."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")

    def isatty(self):
        return False


@pytest.hookimpl(hookwrapper=True)
def pytest_terminal_summary(terminalreporter):
    tw = terminalreporter._tw
    real, tw._file = tw._file, ReaderGone()  # only while the plugins write their summaries
    try:
        yield
    finally:
        tw._file = real
'''


def test_a_closed_stdout_during_the_halo_summary_is_not_a_traceback(pytester: pytest.Pytester, run_halo: Any) -> None:
    pytester.makeconftest(BROKEN_PIPE_CONFTEST)
    pytester.makepyfile(test_ok="def test_ok():\n    assert True\n")
    run = run_halo("--halo", "--halo-skip-analysis")
    out = run.output() + run.result.stderr.str()
    assert run.ret == 0, out
    assert "BrokenPipeError" not in out and "INTERNALERROR" not in out and "Traceback" not in out, out
    assert orjson.loads((run.dir / "tests.jsonl").read_bytes())["outcome"] == "passed"


def test_early_rendered_lines_spill_to_disk_and_come_back_stamped_in_order(tmp_path: Path, monkeypatch: Any) -> None:
    """Past the in-memory budget a test's lines wait in a spill file; manual spans are batched too."""
    from opentelemetry.sdk.trace import TracerProvider

    from pytest_halo.capture import recorder as recorder_mod
    from pytest_halo.capture.otel import HaloSpanProcessor
    from pytest_halo.capture.recorder import Recorder

    monkeypatch.setattr(recorder_mod, "HOLD_LIMIT", 4)
    monkeypatch.setattr(recorder_mod, "EARLY_MEMORY", 600)  # a couple of lines
    monkeypatch.setattr(recorder_mod, "SPILL_CHUNK", 97)  # chunks cut mid-line and mid-placeholder
    rec = Recorder(tmp_path / "r-master.jsonl", "r", "master")
    provider = TracerProvider()
    provider.add_span_processor(HaloSpanProcessor(rec))
    tracer = provider.get_tracer("t")
    rec.context.enter("t.py::long", "call")
    names = []
    for i in range(40):
        if i % 3:
            with tracer.start_as_current_span(f"sdk{i}"):
                pass
        else:
            rec.emit({"trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}", "parent_span_id": "",
                      "name": f"manual{i}", "attributes": {"k": "v" * 50}})
        names.append(f"sdk{i}" if i % 3 else f"manual{i}")
    assert rec._early["t.py::long"].spill is not None  # the lines so far are on disk, not in memory
    assert len(rec._pending["t.py::long"]) < 4  # manual spans no longer pile up unbounded
    rec.context.leave()
    rec.test_finished("t.py::long", "failed")
    rec.close()
    blob = (tmp_path / "r-master.jsonl").read_bytes()
    assert b"\x00" not in blob
    rows = [orjson.loads(x) for x in blob.splitlines()]
    assert [r["name"] for r in rows] == names
    assert {r["attributes"]["halo.test.outcome"] for r in rows} == {"failed"}
