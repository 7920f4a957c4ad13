"""The halo terminal section never passes trace-controlled escapes or secrets to the user's terminal."""

from __future__ import annotations

from pathlib import Path

from pytest_halo.merge import MergeStats
from pytest_halo.session import SessionResult
from pytest_halo.terminal import summary_lines

ESC = "\x1b]0;pwned\x07\x1b[2J"
SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def _result(tmp_path: Path) -> SessionResult:
    return SessionResult(tmp_path, tmp_path / "traces.jsonl", tmp_path / "tests.jsonl", MergeStats(),
                         traces_written=True)


def test_analysis_error_and_notes_are_cleaned(tmp_path: Path) -> None:
    result = _result(tmp_path)
    result.analysis_error = f"ValueError: bad span {ESC} key={SECRET}\nsecond line"
    result.notes.append(f"halo: LLM analysis unavailable: {ESC}")
    lines = summary_lines(result, None, fault_line=f"halo: WARNING: could not write {ESC}")
    text = "\n".join(lines)
    assert "\x1b" not in text and "\x07" not in text
    assert SECRET not in text
    assert any(x.startswith("halo: analysis failed: ValueError: bad span") for x in lines), lines
    assert len(lines) == len(text.splitlines())  # one line each: an injected newline cannot forge a line


def test_failure_mode_titles_are_cleaned_and_keep_their_indent(tmp_path: Path) -> None:
    from engine.findings import Findings
    from engine.run import AnalysisOutcome

    result = _result(tmp_path)
    result.outcome = AnalysisOutcome(findings=Findings(), verdict="pass", exit_code=0, out_dir=tmp_path,
                                     summary_lines=["halo: 1 failure mode", f"  - tool loop {ESC} — 2 tests"])
    lines = summary_lines(result, None)
    mode = next(x for x in lines if "tool loop" in x)
    assert mode.startswith("  - tool loop")
    assert "\x1b" not in mode and "\x07" not in mode
