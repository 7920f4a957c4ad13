"""The gate fails closed at the engine level: what the plugin and the CLI both call.

``check_baseline_path`` runs before any test (plugin configure time); ``run_analysis`` raises
``BaselineError`` for a baseline that was given but cannot be used — never "no baseline, PASS".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from spanbuilder import Run  # noqa: E402

from engine.analysis.baseline import BaselineError, check_baseline_path, load_baseline  # noqa: E402
from engine.findings import Findings  # noqa: E402
from engine.run import run_analysis  # noqa: E402


def _traces(path: Path, tools: list[str], n: int = 6) -> Path:
    with open(path, "wb") as fh:
        for i in range(n):
            r = Run(i, nodeid=f"t.py::test_{i}", outcome="failed")
            for t in tools:
                r.tool(t, "{}", f"Error: {t} broke on item {i}")
            for s in r.spans:
                fh.write(orjson.dumps(s) + b"\n")
    return path


@pytest.fixture
def valid_baseline(tmp_path: Path) -> Path:
    path = tmp_path / "valid.json"
    run_analysis([_traces(tmp_path / "b.jsonl", ["refund"])], tmp_path / "b", baseline=path, update_baseline=True)
    return path


CASES = {
    "missing": (None, "does not exist (create it with --halo-update-baseline"),
    "empty": (b"", "is empty"),
    "object": (b"{}", "not a halo findings file (no schema_version and dataset)"),
    "truncated_findings": ("truncate", "not valid JSON (truncated?)"),
    "foreign": (b'{"resourceSpans": []}', "not a halo findings file"),
    "schema_version": (b'{"schema_version": 7, "dataset": {}}', "schema_version 7; this halo reads schema_version 1"),
    "bad_field": (b'{"schema_version": 1, "dataset": {}, "failure_modes": [{"title": "x"}]}',
                  "failure_modes.0.id: Field required (and 3 more)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_baseline_path_names_the_cause_before_tests_run(case: str, tmp_path: Path, valid_baseline: Path) -> None:
    content, cause = CASES[case]
    path = tmp_path / "baseline.json"
    if content == "truncate":
        content = valid_baseline.read_bytes()[:-200]  # what a full disk used to leave behind
    if content is not None:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(BaselineError) as exc:
        check_baseline_path(path, update=False, update_flag="--halo-update-baseline")
    message = str(exc.value)
    assert "\n" not in message and cause in message and str(path) in message
    assert "validation error" not in message
    assert check_baseline_path(path, update=True) is None  # --update-baseline will (re)create it


def test_run_analysis_raises_instead_of_switching_the_gate_off(tmp_path: Path) -> None:
    traces = _traces(tmp_path / "c.jsonl", ["refund", "ship"])
    for content in (None, b"{}", b'{"schema_version": 1, "dataset": {"runs": 10}, "failure_'):
        path = tmp_path / "baseline.json"
        path.unlink(missing_ok=True)
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(BaselineError):
            run_analysis([traces], tmp_path / "out", baseline=path, fail_on="never")


def test_a_valid_baseline_loads_and_gates(tmp_path: Path, valid_baseline: Path) -> None:
    loaded = check_baseline_path(valid_baseline, update=False)
    assert isinstance(loaded, Findings) and loaded.failure_modes
    assert load_baseline(valid_baseline) == loaded
    outcome = run_analysis([_traces(tmp_path / "c.jsonl", ["refund", "ship"])], tmp_path / "c",
                           baseline=valid_baseline)
    assert outcome.verdict == "fail" and [e.title for e in outcome.findings.gate.new]


def test_fifo_or_unwritable_places_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "baseline.json"
    os.mkfifo(fifo)
    with pytest.raises(BaselineError, match="is a FIFO, not a regular file"):
        check_baseline_path(fifo, update=False)
    with pytest.raises(BaselineError, match="FIFO: refusing to write over it"):
        check_baseline_path(fifo, update=True)
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "target.json")
    with pytest.raises(BaselineError, match="symlink"):
        check_baseline_path(link, update=True)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BaselineError, match="is not a writable directory"):
        check_baseline_path(blocker / "sub" / "baseline.json", update=True)
    assert check_baseline_path(tmp_path / "new" / "dir" / "baseline.json", update=True) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_baseline_says_so(tmp_path: Path, valid_baseline: Path) -> None:
    valid_baseline.chmod(0)
    with pytest.raises(BaselineError, match="cannot read baseline .*Permission denied"):
        check_baseline_path(valid_baseline, update=False)
