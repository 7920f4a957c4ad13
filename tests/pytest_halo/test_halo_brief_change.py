"""``--halo-diff-base``: a mode whose code the change under review touched is attributed to the changed line."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from conftest import EXAMPLE

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

FAULT = 'raise ValueError(f"unsupported order id format: {order_id!r} (expected A###)")'


def git(root, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


def test_the_change_that_plants_the_fault_is_the_suspect(pytester, run_halo):
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".halo", "__pycache__"))
    root = pytester.path
    tools = root / "support_agent" / "tools.py"
    faulty = tools.read_text()
    (root / ".gitignore").write_text(".halo/\n__pycache__/\n")
    tools.write_text(faulty.replace(FAULT, "pass  # legacy ids are looked up like the others"))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "support agent")
    git(root, "checkout", "-q", "-b", "legacy-ids")
    tools.write_text(faulty)  # the change under review (uncommitted) brings the fault in
    run = run_halo("--halo", "--halo-diff-base", "main")
    assert run.ret == 1
    findings = json.loads((run.dir / "findings.json").read_text())
    raise_line = next(i for i, line in enumerate(faulty.splitlines(), 1) if FAULT in line)
    by_title = {m["title"]: m for m in findings["failure_modes"]}
    lookup = next(m for t, m in by_title.items() if "lookup_order" in t)
    assert lookup["suspected_change"] == f"support_agent/tools.py:{raise_line}"
    untouched = [m for t, m in by_title.items() if "cancel_order" in t or "refuses" in t]
    assert untouched and all(m["suspected_change"] is None for m in untouched)
    brief = (run.dir / "fix-brief.md").read_text()
    assert f"**Suspected change.** `support_agent/tools.py:{raise_line}`" in brief
