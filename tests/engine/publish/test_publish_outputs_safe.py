"""Text outputs are written atomically and never through a symlink; one refused output costs a note, not the others."""

from __future__ import annotations

from pathlib import Path

import orjson

from engine.findings import Findings
from engine.run import run_analysis
from engine.traces import conventions
from engine.traces.span import STATUS_ERROR, make_span

T0 = 1_700_000_000_000_000_000


def _traces(path: Path, n: int = 4) -> Path:
    """``n`` failing tests whose ``charge`` tool fails the same way: one systemic mode, so every output is written."""
    with open(path, "wb") as fh:
        for i in range(n):
            tid = f"{i + 1:032x}"
            attrs = {conventions.TEST_NODEID: f"tests/test_pay.py::test_{i}", conventions.TEST_OUTCOME: "failed"}
            root = make_span(trace_id=tid, span_id=f"{i + 1:08x}00000001", name="agent.run", start_ns=T0 + i,
                             end_ns=T0 + i + 10, attributes={"openinference.span.kind": "AGENT", **attrs})
            tool = make_span(trace_id=tid, span_id=f"{i + 1:08x}00000002", parent_span_id=root["span_id"],
                             name="tool charge", start_ns=T0 + i + 1, end_ns=T0 + i + 5, status_code=STATUS_ERROR,
                             status_message="CardDeclined: card 4 declined",
                             attributes={"openinference.span.kind": "TOOL", "tool.name": "charge", **attrs})
            fh.write(orjson.dumps(root) + b"\n" + orjson.dumps(tool) + b"\n")
    return path


def test_a_symlinked_output_is_refused_and_the_other_outputs_are_written(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out_dir / "report.md").symlink_to(victim)

    outcome = run_analysis([_traces(tmp_path / "t.jsonl")], out_dir)

    assert victim.read_text() == "precious\n" and (out_dir / "report.md").is_symlink()
    assert "report.md" not in outcome.files
    assert any(n.startswith("report.md not written: UnsafePathError") for n in outcome.findings.notes)
    assert {"findings.json", "junit.xml", "report.html", "fix-brief.md"} <= set(outcome.files)
    assert Findings.read(out_dir / "findings.json").failure_modes


def test_text_outputs_leave_no_temporary_files(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    outcome = run_analysis([_traces(tmp_path / "t.jsonl")], out_dir)
    assert {"report.md", "fix-brief.md", "fix-brief.json"} <= set(outcome.files)
    assert not [p.name for p in out_dir.iterdir() if p.name.endswith(".tmp")]
    assert outcome.files["report.md"].read_text(encoding="utf-8").startswith("# pytest-halo report")
