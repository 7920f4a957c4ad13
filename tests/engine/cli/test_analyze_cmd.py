"""``halo analyze``: files written, summary printed, exit 0 pass / 1 gate failed / 2 usage or input error."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
from spanbuilder import Run  # noqa: E402

from engine.cli import main  # noqa: E402


def _write(path: Path, tools: list[str], n: int = 3) -> Path:
    with open(path, "wb") as fh:
        for i in range(n):
            r = Run(i, nodeid=f"t.py::test_{i}", outcome="failed")
            for t in tools:
                r.tool(t, "{}", f"Error: {t} broke on item {i}")
            for s in r.spans:
                fh.write(orjson.dumps(s) + b"\n")
    return path


def test_exit_codes_and_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _write(tmp_path / "base.jsonl", ["refund"])
    cand = _write(tmp_path / "cand.jsonl", ["refund", "ship"], n=40)
    baseline = tmp_path / "baseline.json"
    out = tmp_path / "out"
    assert main(["analyze", str(base), "--out", str(out), "--baseline", str(baseline), "--update-baseline"]) == 0
    assert baseline.is_file() and (out / "report.md").is_file() and (out / "junit.xml").is_file()
    assert main(["analyze", str(base), "--out", str(out), "--baseline", str(baseline)]) == 0
    printed = capsys.readouterr().out
    assert "Tool `refund` fails" in printed and "gate: no new failure modes vs baseline" in printed
    assert main(["analyze", str(cand), "--out", str(out), "--baseline", str(baseline)]) == 1
    assert "gate: FAILED, 1 new vs baseline" in capsys.readouterr().out
    assert main(["analyze", str(cand), "--out", str(out), "--baseline", str(baseline), "--fail-on", "never"]) == 0


def test_usage_and_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("garbage\n")
    assert main(["analyze", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert main(["analyze", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "halo analyze: error:" in err and "nothing readable" in err and "Traceback" not in err
    ok = _write(tmp_path / "ok.jsonl", ["x"])
    assert main(["analyze", str(ok), "--out", str(tmp_path / "o"), "--update-baseline"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["analyze", str(ok), "--out", str(tmp_path / "o"), "--baseline", str(bad)]) == 2
    assert main(["analyze", str(ok), "--out", str(tmp_path / "o"), "--min-runs", "0"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(ok), "--out", str(tmp_path / "o"), "--fail-on", "maybe"])
    assert exc.value.code == 2
