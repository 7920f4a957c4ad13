"""Text outputs are written atomically and never through a symlink; one refused output costs a note, not the others."""

from __future__ import annotations

from pathlib import Path

from charge_traces import failing_charge_traces

from engine.findings import Findings
from engine.run import run_analysis


def test_a_symlinked_output_is_refused_and_the_other_outputs_are_written(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out_dir / "report.md").symlink_to(victim)

    outcome = run_analysis([failing_charge_traces(tmp_path / "t.jsonl")], out_dir)

    assert victim.read_text() == "precious\n" and (out_dir / "report.md").is_symlink()
    assert "report.md" not in outcome.files
    assert any(n.startswith("report.md not written: UnsafePathError") for n in outcome.findings.notes)
    assert {"findings.json", "junit.xml", "report.html", "fix-brief.md"} <= set(outcome.files)
    assert Findings.read(out_dir / "findings.json").failure_modes


def test_text_outputs_leave_no_temporary_files(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    outcome = run_analysis([failing_charge_traces(tmp_path / "t.jsonl")], out_dir)
    assert {"report.md", "fix-brief.md", "fix-brief.json"} <= set(outcome.files)
    assert not [p.name for p in out_dir.iterdir() if p.name.endswith(".tmp")]
    assert outcome.files["report.md"].read_text(encoding="utf-8").startswith("# pytest-halo report")
