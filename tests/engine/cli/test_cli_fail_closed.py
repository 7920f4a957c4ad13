"""The CLI fails closed: a baseline given but unusable, a FIFO or device where a file belongs, a full disk —
each is one line on stderr and a non-zero exit, never a silently disabled gate, a hang or a traceback."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
from spanbuilder import Run  # noqa: E402

from engine import __version__  # noqa: E402
from engine.cli import main  # noqa: E402

HALO = [sys.executable, "-c", "import sys; from pytest_halo.engine_check import halo_main; sys.exit(halo_main())"]


def _write(path: Path, tools: list[str], n: int = 6) -> Path:
    with open(path, "wb") as fh:
        for i in range(n):
            r = Run(i, nodeid=f"t.py::test_{i}", outcome="failed")
            for t in tools:
                r.tool(t, "{}", f"Error: {t} broke on item {i}")
            for s in r.spans:
                fh.write(orjson.dumps(s) + b"\n")
    return path


def _halo(*args: str, cwd: Path, timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HALO, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, **kw)


def _one_error_line(err: str, *needles: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


BAD_BASELINES = {
    "empty": (b"", "is empty"),
    "object": (b"{}", "not a halo findings file (no schema_version and dataset)"),
    "truncated": (b'{"schema_version": 1, "dataset": {"runs": 3}, "failure_modes": [{"id": "fm-1', "not valid JSON (truncated?)"),
    "foreign": (b'{"name": "left-pad", "version": "1.3.0", "dependencies": {}}', "not a halo findings file"),
    "list": (b"[1, 2, 3]", "its JSON is a list"),
    "schema2": (b'{"schema_version": 2, "dataset": {}}', "schema_version 2; this halo reads schema_version 1"),
    "invalid": (b'{"schema_version": 1, "dataset": {"runs": "many"}}', "dataset.runs: Input should be a valid integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_BASELINES))
def test_an_invalid_baseline_is_one_line_naming_the_cause(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    traces = _write(tmp_path / "t.jsonl", ["refund"])
    content, cause = BAD_BASELINES[case]
    (tmp_path / "base.json").write_bytes(content)
    rc = main(["analyze", str(traces), "--out", str(tmp_path / "out"), "--baseline", str(tmp_path / "base.json")])
    assert rc == 2
    line = _one_error_line(capsys.readouterr().err, "halo analyze: error: baseline", "base.json", cause)
    assert "validation error" not in line
    assert not (tmp_path / "out").exists()  # refused before any work


def test_a_mistyped_baseline_path_is_an_error_not_no_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traces = _write(tmp_path / "t.jsonl", ["refund"])
    rc = main(["analyze", str(traces), "--out", str(tmp_path / "out"), "--baseline", str(tmp_path / "basline.json")])
    assert rc == 2
    _one_error_line(capsys.readouterr().err, "basline.json does not exist", "--update-baseline")
    for fail_on in ("never", "any"):  # a path given is a path promised, whatever the policy
        assert main(["analyze", str(traces), "--out", str(tmp_path / "o2"), "--baseline",
                     str(tmp_path / "basline.json"), "--fail-on", fail_on]) == 2


def test_update_baseline_creates_a_missing_baseline_and_the_next_run_gates_on_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _write(tmp_path / "base.jsonl", ["refund"])
    cand = _write(tmp_path / "cand.jsonl", ["refund", "ship"])
    baseline = tmp_path / "new" / "baseline.json"
    assert main(["analyze", str(base), "--out", str(tmp_path / "b"), "--baseline", str(baseline),
                 "--update-baseline"]) == 0
    assert orjson.loads(baseline.read_bytes())["schema_version"] == 1
    assert main(["analyze", str(cand), "--out", str(tmp_path / "c"), "--baseline", str(baseline)]) == 1
    # an unusable existing baseline is simply replaced by --update-baseline
    baseline.write_text("{")
    assert main(["analyze", str(base), "--out", str(tmp_path / "b2"), "--baseline", str(baseline),
                 "--update-baseline"]) == 0
    assert orjson.loads(baseline.read_bytes())["schema_version"] == 1
    capsys.readouterr()


def test_a_baseline_that_is_a_directory_or_device_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traces = _write(tmp_path / "t.jsonl", ["refund"])
    for bad, what in ((tmp_path, "directory"), (Path("/dev/null"), "character device")):
        assert main(["analyze", str(traces), "--out", str(tmp_path / "out"), "--baseline", str(bad)]) == 2
        _one_error_line(capsys.readouterr().err, "baseline", what)
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    assert main(["analyze", str(traces), "--out", str(tmp_path / "out"), "--baseline", str(link),
                 "--update-baseline"]) == 2
    _one_error_line(capsys.readouterr().err, "symlink")
    assert not (tmp_path / "elsewhere.json").exists()


def test_fifos_as_baseline_inputs_tests_or_outputs_are_refused_at_once(tmp_path: Path) -> None:
    traces = _write(tmp_path / "t.jsonl", ["refund"])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = [
        (["analyze", "t.jsonl", "--out", "o", "--baseline", "fifo"], "baseline fifo is a FIFO"),
        (["analyze", "fifo", "--out", "o"], "fifo is a FIFO"),
        (["analyze", "t.jsonl", "--out", "o", "--tests", "fifo"], "fifo is a FIFO"),
        (["index", "fifo"], "fifo is a FIFO"),
        (["convert", "fifo", "-o", "x.jsonl"], "fifo is a FIFO"),
        (["convert", "t.jsonl", "-o", "fifo"], "fifo is a FIFO: refusing to write over it"),
    ]
    for args, needle in cases:
        proc = _halo(*args, cwd=tmp_path, timeout=30)  # a hang would time out here
        assert proc.returncode == 2, (args, proc.stderr)
        _one_error_line(proc.stderr, needle)
    assert traces.exists() and not (tmp_path / "x.jsonl").exists()


def test_convert_replaces_only_regular_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traces = _write(tmp_path / "t.jsonl", ["refund"])
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(victim)
    assert main(["convert", str(traces), "-o", str(link)]) == 2
    _one_error_line(capsys.readouterr().err, "is a symlink: refusing to write over it")
    assert victim.read_text() == "precious\n" and link.is_symlink()
    assert main(["convert", str(traces), "-o", "/dev/null"]) == 2
    _one_error_line(capsys.readouterr().err, "character device")
    out = tmp_path / "regular.jsonl"
    out.write_text("old\n")
    assert main(["convert", str(traces), "-o", str(out), "-q"]) == 0
    assert out.read_bytes().count(b"\n") == traces.read_bytes().count(b"\n")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG, like a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))


def test_a_full_disk_keeps_the_old_baseline_and_the_gate_still_fails(tmp_path: Path) -> None:
    _write(tmp_path / "base.jsonl", ["refund"])
    _write(tmp_path / "cand.jsonl", ["refund", "ship"])
    assert _halo("analyze", "base.jsonl", "--out", "b", "--baseline", "base.json", "--update-baseline",
                 cwd=tmp_path).returncode == 0
    before = (tmp_path / "base.json").read_bytes()
    assert len(before) > 1024
    full = _halo("analyze", "cand.jsonl", "--out", "c", "--baseline", "base.json", "--update-baseline",
                 cwd=tmp_path, preexec_fn=_limit_file_size)
    assert full.returncode == 2, full.stdout + full.stderr
    _one_error_line(full.stderr, "halo analyze: error: cannot write", "base.json")
    assert (tmp_path / "base.json").read_bytes() == before  # whole, not truncated
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    gated = _halo("analyze", "cand.jsonl", "--out", "c2", "--baseline", "base.json", cwd=tmp_path)
    assert gated.returncode == 1, gated.stdout  # the new mode still fails the gate


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"halo (pytest-halo) {__version__}"


@pytest.mark.parametrize("args", [("index", "--no-cache", "t.jsonl"), ("index", "--json", "--no-cache", "t.jsonl"),
                                  ("convert", "t.jsonl", "-o", "c.jsonl", "--json", "-q")])
def test_output_piped_into_a_closed_reader_is_no_traceback(args: tuple[str, ...], tmp_path: Path) -> None:
    _write(tmp_path / "t.jsonl", ["refund"], n=200)
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head` that has already exited
    try:
        proc = subprocess.run([*HALO, *args], cwd=tmp_path, stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 141


def test_analyze_piped_into_head_keeps_the_gate_verdict(tmp_path: Path) -> None:
    _write(tmp_path / "base.jsonl", ["refund"])
    _write(tmp_path / "cand.jsonl", ["refund", "ship"])
    assert _halo("analyze", "base.jsonl", "--out", "b", "--baseline", "base.json", "--update-baseline",
                 cwd=tmp_path).returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([*HALO, "analyze", "cand.jsonl", "--out", "c", "--baseline", "base.json"],
                              cwd=tmp_path, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1  # the gate failed; a closed pipe does not turn that into a pass


def test_a_foreign_engine_package_is_named_in_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "shadow" / "engine"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('"""halo-engine stand-in: also a top-level package named engine."""\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    proc = _halo("--version", cwd=tmp_path, env=env)
    assert proc.returncode == 2
    _one_error_line(proc.stderr, "halo: error: the 'engine' package imported from", str(fake / "__init__.py"),
                    "is not pytest-halo's")
    broken = tmp_path / "broken" / "engine"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('needs its own dependencies')\n")
    proc = _halo("--version", cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path / "broken")})
    assert proc.returncode == 2
    _one_error_line(proc.stderr, "cannot import pytest-halo's 'engine' package", "RuntimeError")


@pytest.mark.parametrize("command", [("brief",), ("report",), ("github", "publish", "--findings")])
@pytest.mark.parametrize("case", ["truncated", "schema2", "missing"])
def test_commands_reading_findings_name_the_real_cause(command: tuple[str, ...], case: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """``halo brief``, ``halo report`` and ``halo github publish`` read a findings file as the gate reads a baseline."""
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/agent")
    path = tmp_path / "findings.json"
    if case != "missing":
        path.write_bytes(BAD_BASELINES[case][0])
    expected = BAD_BASELINES[case][1] if case != "missing" else "does not exist"
    assert main([*command, str(path)]) == 2
    line = _one_error_line(capsys.readouterr().err, f"findings {path}", expected)
    assert "validation error" not in line
