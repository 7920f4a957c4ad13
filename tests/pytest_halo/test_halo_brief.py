"""The fix brief on the bundled example: right source locations, and commands that work as written."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLE


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _run(cmd: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a brief command exactly as written, with this venv's ``pytest`` (no shell)."""
    argv = shlex.split(cmd)
    assert argv[0] == "pytest"
    exe = Path(sys.executable).with_name("pytest")
    argv[:1] = [str(exe)] if exe.exists() else [sys.executable, "-m", "pytest"]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=180, env=dict(os.environ))


def lookup_seen(brief: dict) -> list[str]:
    return next(m["seen_in"] for m in brief["modes"] if "lookup_order" in m["title"])


def test_example_brief_locates_modes_and_its_commands_reproduce_and_verify(pytester, run_halo):
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".halo", "__pycache__"))
    root = pytester.path
    run = run_halo("--halo")
    assert run.ret == 1
    brief = json.loads((run.dir / "fix-brief.json").read_text())
    md = (run.dir / "fix-brief.md").read_text()
    assert brief["run_from"] == str(root.resolve()) and str(root.resolve()) in md
    assert "not the tests" in brief["preamble"] and "one trace" in brief["preamble"]
    modes = {m["title"]: m for m in brief["modes"]}

    def mode(*words: str) -> dict:
        return next(m for t, m in modes.items() if all(w in t for w in words))

    tools_py = root / "support_agent" / "tools.py"
    policy_py = root / "support_agent" / "policy.py"
    agent_py = root / "support_agent" / "agent.py"

    def where(m: dict) -> set[str]:
        return {f"{loc['path']}:{loc['line']}" for loc in m["locations"]}

    def at(path: Path, needle: str) -> str:
        return f"{path.relative_to(root).as_posix()}:{_line_of(path, needle)}"

    lookup = mode("lookup_order", "fails")
    assert at(tools_py, "def lookup_order") in where(lookup)
    assert at(tools_py, 'raise ValueError(f"unsupported order id') in where(lookup)
    assert at(policy_py, 'Call("cancel_order"') in where(mode("cancel_order"))
    assert at(tools_py, "def update_address") in where(mode("Retry loop"))
    assert at(agent_py, 'Agent(name="support"') in where(mode("refuses"))
    assert at(agent_py, "MAX_TURNS = ") in where(mode("budget"))
    assert all(m["locations"] for m in brief["modes"]), "every mode names a source location"

    # two or three excerpts per mode, each from its own evidence span, and the error leads the title
    for m in brief["modes"]:
        assert 2 <= len(m["evidence"]) <= 3 and len(set(m["seen_in"])) == len(m["evidence"]), m
    assert len({s.split(" ")[0] for s in lookup_seen(brief)}) == 3, "the excerpts come from different tests"
    assert not any("Error running tool" in m["title"] for m in brief["modes"])
    report = (run.dir / "report.md").read_text()
    for section in report.split("\n## ")[1:]:  # facets share the tool's definition: each place listed once
        places = [line.split("`")[1] for line in section.splitlines() if line.startswith("- `") and ".py:" in line]
        assert len(places) == len(set(places)), section

    # every reproduce command names exactly failing tests of the run (at most 10), from the rootdir
    failing = {n for n, t in run.tests.items() if t["outcome"] == "failed"}
    for m in brief["modes"]:
        ids = shlex.split(m["reproduce"])[1:]
        assert ids and len(ids) <= 10 and set(ids) <= failing and set(ids) == set(m["failing_tests"])
        assert shlex.split(m["verify"])[-len(ids):] == ids
    # ... and runs as written: the mode's tests fail
    proc = _run(lookup["reproduce"], root)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert proc.stdout.splitlines()[-1].startswith("=") and "4 failed" in proc.stdout.splitlines()[-1]
    assert lookup["reproduce"] in md and lookup["verify"] in md

    # verify passes once lookup_order understands legacy ids, the mode resolved against the snapshot
    src = tools_py.read_text()
    fixed = src.replace('raise ValueError(f"unsupported order id format: {order_id!r} (expected A###)")',
                        'order_id = order_id')
    assert fixed != src
    tools_py.write_text(fixed)
    after = _run(lookup["verify"], root)
    assert after.returncode == 0, after.stdout[-3000:]
    verify_dir = root / ".halo" / "verify"
    gate = json.loads((verify_dir / "findings.json").read_text())["gate"]
    assert lookup["id"] in {e["id"] for e in gate["resolved"]} and gate["verdict"] == "pass"
    # the other modes' tests did not run: not re-run, never "resolved"
    others = {m["id"] for m in brief["modes"]} - {lookup["id"]}
    assert {e["id"] for e in gate["not_rerun"]} == others and lookup["id"] not in others
    assert {e["id"] for e in gate["resolved"]} == {lookup["id"]}
    assert f"1 resolved; {len(others)} not re-run" in after.stdout, after.stdout[-3000:]
    assert json.loads((run.dir / "fix-brief.json").read_text()) == brief, "the verify run leaves the brief alone"
