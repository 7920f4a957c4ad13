"""`halo index`: JSON keys, human summary, exit codes 0 / 2, cache flags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parents[3]
GEN = ROOT / "tests" / "data" / "gen_traces.py"


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("t") / "t.jsonl"
    subprocess.run([sys.executable, str(GEN), "--spans", "500", "--out", str(out)], check=True, capture_output=True)
    with open(out, "ab") as fh:
        fh.write(b"not json\n[1]\n")
    return out


def _run(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "index", *args, "--cache-dir", str(cache)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_json_report(traces: Path, tmp_path: Path) -> None:
    r = _run(str(traces), "--json", cache=tmp_path / "c")
    assert r.returncode == 0, r.stderr
    out = orjson.loads(r.stdout)
    assert {"spans", "traces", "error_spans", "files", "skipped_lines", "repaired", "examples"} <= set(out)
    assert out["spans"] == 500
    assert out["skipped_lines"] == {"malformed_json": 1, "not_an_object": 1}
    (f,) = out["files"]
    assert {"path", "format", "spans", "skipped"} <= set(f)
    assert (f["path"], f["format"], f["spans"], f["skipped"]) == (str(traces), "canonical", 500, 2)
    assert any(e.startswith(f"{traces}:501: malformed_json") for e in out["examples"])
    assert f["index"] == "cold"
    again = orjson.loads(_run(str(traces), "--json", cache=tmp_path / "c").stdout)
    assert again["files"][0]["index"] == "warm" and again["spans"] == 500


def test_human_summary_and_no_cache(traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(traces), "--no-cache", "--cache-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "500 spans" in out and "skipped: malformed_json=1, not_an_object=1" in out
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("content", [None, b"", b"garbage\n{\"a\": 1}\n"])
def test_nothing_readable_exits_2_with_one_line(tmp_path: Path, content: bytes | None) -> None:
    p = tmp_path / "in.jsonl"
    if content is not None:
        p.write_bytes(content)
    r = _run(str(p), cache=tmp_path / "c")
    assert r.returncode == 2
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("halo index: error:")


def test_some_readable_is_exit_0(traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(traces), str(tmp_path / "missing.jsonl"), "--json", "--cache-dir", str(tmp_path)]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["skipped_lines"]["unreadable_file"] == 1 and out["spans"] == 500
