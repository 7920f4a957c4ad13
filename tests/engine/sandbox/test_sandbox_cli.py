"""``halo sandbox doctor`` and ``halo run-code`` as a user runs them (subprocesses, real sandbox)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.sandbox import SandboxUnavailable, provision


@pytest.fixture(scope="module", autouse=True)
def provisioned() -> None:
    try:
        provision.require()
    except SandboxUnavailable as exc:
        pytest.skip(f"{exc} (CI runs `halo sandbox setup`)")


def halo(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, input=stdin,
                          timeout=120, check=False)


def test_doctor_says_what_is_there() -> None:
    proc = halo("sandbox", "doctor")
    assert proc.returncode == 0, proc.stderr
    assert f"pyodide {provision.PYODIDE_VERSION}: ok" in proc.stdout and "run_code: available" in proc.stdout


def test_run_code_aggregates_the_tau_bench_rollups(corpora: Path) -> None:
    code = ("import traces, collections\nr = traces.rollups()\n"
            "print(len(r), sorted(collections.Counter(x['test_outcome'] for x in r).items()))\n"
            "db = traces.sql()\nprint(db.execute('select count(*) from traces where has_errors').fetchone()[0])")
    proc = halo("run-code", str(corpora / "tau-bench-airline"), "--code", code)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["exit_code"] == 0 and not out["timed_out"], out
    first, errors = out["stdout"].splitlines()
    assert first == "200 [('failed', 116), ('passed', 84)]"
    assert int(errors) > 0


def test_run_code_selected_spans_and_stdin(corpora: Path) -> None:
    from engine.traces.store import TraceStore

    store = TraceStore.open([corpora / "tau-bench-airline"])
    tid = store.trace_ids[3]
    code = f"import traces\nspans = traces.spans()\nprint(len(spans), {{s['trace_id'] for s in spans}} == {{{tid!r}}})"
    proc = halo("run-code", str(corpora / "tau-bench-airline"), "--trace-id", tid, "--code", "-", stdin=code)
    out = json.loads(proc.stdout)
    assert out["stdout"] == f"{len(store.spans(tid))} True\n", out


def test_run_code_reports_a_timeout_as_json() -> None:
    proc = halo("run-code", "--timeout", "1", "--code", "while True: pass")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["timed_out"] is True and out["exit_code"] == 124


def test_run_code_refuses_a_fifo_input(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = halo("run-code", str(fifo), "--code", "print(1)")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_run_code_selects_spans_by_filter(corpora: Path) -> None:
    from engine.traces.query_models import TraceFilters
    from engine.traces.store import TraceStore

    store = TraceStore.open([corpora / "tau-bench-airline"])
    wanted = store.match_trace_ids(TraceFilters(has_errors=True, test_outcome=["failed"]))
    code = "import traces\nprint(len({s['trace_id'] for s in traces.spans()}), len(traces.spans()))"
    proc = halo("run-code", str(corpora / "tau-bench-airline"), "--filter", "has_errors=true",
                "--filter", "test_outcome=failed", "--code", code)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["stdout"] == f"{len(wanted)} {sum(len(store.spans(t)) for t in wanted)}\n", out
    assert out["selected"] == {"traces": len(wanted), "matched_by_filters": len(wanted)}


@pytest.mark.parametrize(("flt", "message"), [
    ("has_errors", "--filter 'has_errors': expected KEY=VALUE"),
    ("colour=red", "--filter 'colour=red': unknown key 'colour'"),
    ("has_errors=perhaps", "--filter has_errors: Input should be a valid boolean"),
    ("categories=nonsense", "--filter: unknown categories ['nonsense']"),
    ("regex_pattern=(", "--filter: "),
])
def test_run_code_bad_filters_are_one_line(corpora: Path, flt: str, message: str) -> None:
    proc = halo("run-code", str(corpora / "tau-bench-airline"), "--filter", flt, "--code", "print(1)")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
