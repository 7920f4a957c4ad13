"""``halo analyze`` says which output it could not write (one line, rc unchanged) and ``findings.json`` notes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from charge_traces import failing_charge_traces

from engine.findings import Findings


def test_halo_analyze_prints_the_refused_output_and_findings_json_notes_it(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out_dir / "report.md").symlink_to(victim)
    proc = subprocess.run([sys.executable, "-m", "engine", "analyze", str(failing_charge_traces(tmp_path / "h.jsonl")),
                           "--out", str(out_dir)], capture_output=True, text=True, timeout=120, check=False)
    assert victim.read_text() == "precious\n"
    lines = [line for line in proc.stdout.splitlines() if "not written" in line]
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert lines[0].startswith("halo: report.md not written: UnsafePathError: ") and "symlink" in lines[0]
    assert "Traceback" not in proc.stderr
    notes = Findings.read(out_dir / "findings.json").notes
    assert [n for n in notes if "not written" in n] == [lines[0].removeprefix("halo: ")]
