"""`halo convert` end to end through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson

from engine.cli import main
from engine.traces.ingest import iter_spans
from engine.traces.problems import Problems


def test_convert_corpora(corpora: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out" / "all.jsonl"
    rc = main(["convert", str(corpora / "tau-bench-airline"), str(corpora / "swe-agent-traj"),
               str(corpora / "any-agent-otel"), "-o", str(out)])
    assert rc == 0
    err = capsys.readouterr().err.strip().splitlines()
    # 3818 tau-bench + 47 SWE-agent + 572 any-agent spans; 7 any-agent files have merge-conflict markers
    assert err[0] == (
        f"halo convert: wrote {out}: 4437 spans from 90 files; skipped merge_conflict_markers=7; "
        "repaired missing_end_time=36"
    )
    lines = out.read_bytes().splitlines()
    assert len(lines) == 4437
    rc = main(["convert", str(corpora / "swe-agent-traj"), "-o", str(tmp_path / "swe.jsonl"), "--json", "-q"])
    captured = capsys.readouterr()
    assert rc == 0 and captured.err == ""
    stats = json.loads(captured.out)
    assert stats["spans"] == 47 and [f["spans"] for f in stats["files"]] == [11, 25, 11]
    assert {f["format"] for f in stats["files"]} == {"swe_agent"}
    assert list(iter_spans([out], Problems()))[0] == orjson.loads(lines[0])


def test_convert_usage_errors(tmp_path: Path, capsys) -> None:
    assert main(["convert", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert main(["convert", str(empty_dir), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "no trace files" in capsys.readouterr().err
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n{also not\n")
    assert main(["convert", str(garbage), "-o", str(tmp_path / "o.jsonl")]) == 2  # nothing readable
    err = capsys.readouterr().err
    assert "halo convert: error: no spans could be read: 0 spans from 1 files; skipped not_trace_data=1" in err
    assert f"{garbage}: not_trace_data" in err and not (tmp_path / "o.jsonl").exists()
    same = tmp_path / "same.jsonl"
    same.write_text("")
    assert main(["convert", str(same), "-o", str(same)]) == 2
    assert "also an input" in capsys.readouterr().err


def test_convert_forced_format_and_console_script(tmp_path: Path) -> None:
    msgs = tmp_path / "chat.data"
    msgs.write_bytes(orjson.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]))
    out = tmp_path / "o.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "convert", str(msgs), "--format", "openai_messages", "-o", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 spans from 1 files" in proc.stderr
    assert len(out.read_bytes().splitlines()) == 2
