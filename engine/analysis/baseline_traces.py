"""A baseline's own traces: written beside the baseline file on request, read back to evaluate new signatures.

A signature first found on a PR was never evaluated on the baseline's data, so its absence
there proves nothing. When the baseline carries its traces, the signature is evaluated on them
and the gate judges it with the same statistics as a detector mode.

The files sit beside the baseline and are named after it (``base.json`` →
``base.traces.jsonl.gz`` and, for test-linked runs, ``base.tests.jsonl.gz``): two baselines
in one directory keep their own traces, and a baseline kept in ``.halo`` or the repository
root never leaves a ``traces.jsonl.gz`` where trace inputs are looked for.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import orjson

from engine.analysis.assemble import TestIndex
from engine.analysis.pipeline import read_tests_file
from engine.safe_io import atomic_writer, check_regular_input
from engine.traces.problems import Problems
from engine.traces.store import TraceStore

__all__ = [
    "TESTS_FILE",
    "TRACES_FILE",
    "baseline_trace_files",
    "open_baseline_traces",
    "remove_baseline_traces",
    "write_baseline_traces",
]

TRACES_FILE = "traces.jsonl.gz"
TESTS_FILE = "tests.jsonl.gz"


def baseline_trace_files(baseline_path: Path) -> tuple[Path, Path]:
    """Where a baseline's traces and tests live: beside the baseline file, named after it."""
    p = Path(baseline_path)
    stem = p.name[: -len(".json")] if p.name.endswith(".json") else p.name
    return p.with_name(f"{stem}.{TRACES_FILE}"), p.with_name(f"{stem}.{TESTS_FILE}")


def write_baseline_traces(store: TraceStore, tests_file: Path | None, baseline_path: Path) -> list[Path]:
    """Write the analysed spans (canonical JSONL, gzip) and the tests file beside the baseline, atomically."""
    traces_path, tests_path = baseline_trace_files(baseline_path)
    traces_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(traces_path) as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
        dumps = orjson.dumps
        for span in store.iter_spans():
            gz.write(dumps(span))
            gz.write(b"\n")
    written = [traces_path]
    if tests_file is not None and Path(tests_file).is_file():
        with open(tests_file, "rb") as src, atomic_writer(tests_path) as raw, gzip.GzipFile(
            fileobj=raw, mode="wb", mtime=0
        ) as gz:
            shutil.copyfileobj(src, gz)
        written.append(tests_path)
    elif tests_path.exists():
        tests_path.unlink()  # a stale tests file would link these traces to another run's tests
    return written


def remove_baseline_traces(baseline_path: Path) -> list[Path]:
    """Delete the traces of an earlier baseline (a baseline updated without them must not keep stale ones)."""
    gone = []
    for p in baseline_trace_files(baseline_path):
        if p.is_file():
            p.unlink()
            gone.append(p)
    return gone


def open_baseline_traces(baseline_path: Path, problems: Problems) -> tuple[TraceStore, TestIndex] | None:
    """The baseline's trace store and test index, or None when it carries no traces (or they are unreadable)."""
    traces_path, tests_path = baseline_trace_files(baseline_path)
    if not traces_path.is_file():
        return None
    check_regular_input(traces_path)
    store = TraceStore.open([traces_path])
    if store.span_count == 0:
        return None
    tests = TestIndex()
    if tests_path.is_file():
        check_regular_input(tests_path)
        with tempfile.TemporaryDirectory(prefix="halo-baseline-tests-") as tmp:
            plain = Path(tmp) / "tests.jsonl"
            with gzip.open(tests_path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tests = read_tests_file(plain, problems)
    return store, tests
