"""The LLM's ``suspected_change``: checked against a real git repository and its change under review, carried
from ``final_answer`` to ``FailureMode.suspected_change`` and into the fix brief."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from scripted_server import calls, turn_of

from engine.llm.attribution import ChangeScope, SuspectChecker, carry_suspected_changes
from engine.llm.engine import run_engine

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

TOOLS_V1 = "def book(amount):\n    return 'booked'\n\n\ndef refund(order):\n    return 'ok'\n"
TOOLS_V2 = "def book(amount):\n    raise ValueError('payment amount does not add up')\n\n\ndef refund(order):\n    return 'ok'\n"


def git(root: Path, *args: str) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(root), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose branch `work` changed line 2 of agent/tools.py (against `main`) and added new.py."""
    root = tmp_path / "repo"
    (root / "agent").mkdir(parents=True)
    (root / "agent" / "tools.py").write_text(TOOLS_V1)
    (root / "README").write_text("hello\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "v1")
    git(root, "checkout", "-q", "-b", "work")
    (root / "agent" / "tools.py").write_text(TOOLS_V2)
    git(root, "commit", "-q", "-am", "v2")
    (root / "agent" / "new.py").write_text("X = 1\n")  # untracked: every line is new
    (tmp_path / "secret.py").write_text("KEY = 1\n")
    (root / "agent" / "link.py").symlink_to(tmp_path / "secret.py")
    return root


def test_without_a_diff_base_any_file_line_inside_the_repository_holds(repo, monkeypatch):
    monkeypatch.delenv("GITHUB_BASE_REF", raising=False)
    scope = ChangeScope.of(repo)
    assert scope.changed is None
    assert scope.check("agent/tools.py:5") == ("agent/tools.py:5", "")
    assert scope.check("`README`") == ("README", "")
    assert scope.check(str(repo / "agent" / "tools.py") + ":1") == ("agent/tools.py:1", "")  # absolute, inside
    assert scope.check("agent/tools.py:7") == (None, "line past the end of the file")
    assert scope.check("agent/tools.py:0") == (None, "line past the end of the file")
    assert scope.check("agent/nope.py:1") == (None, "no such file in the repository")
    assert scope.check("../secret.py:1") == (None, "outside the repository")
    assert scope.check(str(repo.parent / "secret.py")) == (None, "outside the repository")
    assert scope.check("agent/link.py:1") == (None, "outside the repository")  # a symlink out
    assert ChangeScope.of(None).check("agent/tools.py:2") == (None, "no repository to check it against")


def test_with_a_diff_base_only_changed_lines_hold(repo, monkeypatch):
    monkeypatch.delenv("GITHUB_BASE_REF", raising=False)
    scope = ChangeScope.of(repo, "main")
    assert scope.changed is not None and 2 in scope.changed["agent/tools.py"]
    assert scope.check("agent/tools.py:2") == ("agent/tools.py:2", "")
    assert scope.check("agent/tools.py") == ("agent/tools.py", "")
    assert scope.check("agent/tools.py:5") == (None, "not a line the change under review changed")
    assert scope.check("README:1") == (None, "not in a file the change under review touched")
    assert scope.check("agent/new.py:1") == ("agent/new.py:1", "")
    monkeypatch.setenv("GITHUB_BASE_REF", "main")  # the CI's base ref is used when none is given
    assert ChangeScope.of(repo).check("README") == (None, "not in a file the change under review touched")


def test_carry_matches_by_signature_id_and_keeps_an_existing_attribution():
    from engine.findings import Evidence, FailureMode, Findings, Signature
    from engine.signatures import normalize_signature, signature_id

    sig = Signature(field="error", regex="payment amount")
    sid = signature_id(normalize_signature(sig))
    proposed = FailureMode(id=sid, key=sid, title="t", category="llm", detector="llm", signature=sig,
                           evidence=[Evidence(trace_id="a")], suspected_change="agent/tools.py:2")
    merged = FailureMode(id="fm-detector", key="k", title="d", category="tool_error", detector="tool_error",
                         details={"signature_id": [sid]})
    other = FailureMode(id="fm-other", key="o", title="o", category="loop", detector="loop")
    kept = FailureMode(id=sid, key=sid, title="t2", category="llm", detector="llm", suspected_change="x.py:1")
    findings = Findings(failure_modes=[merged, other])
    assert carry_suspected_changes(findings, [proposed]) == 1
    assert merged.suspected_change == "agent/tools.py:2" and other.suspected_change is None
    assert carry_suspected_changes(Findings(failure_modes=[kept]), [proposed]) == 0 and kept.suspected_change == "x.py:1"


def test_checker_counts_what_it_drops_in_one_note(repo):
    checker = SuspectChecker(lambda: ChangeScope.of(repo, "main"))
    assert [checker.check(x) for x in ("agent/tools.py:2", "README:1", "../x", "agent/tools.py:5", None)] == \
        ["agent/tools.py:2", None, None, None, None]
    assert checker.note() == ("LLM suspected_change dropped from 3 modes: 1 not in a file the change under review "
                              "touched, 1 outside the repository, 1 not a line the change under review changed")


def _final(modes):
    def script(req, n):
        if turn_of(req) == 0:
            return calls(("get_dataset_overview", {}))
        return calls(("final_answer", {"answer": "# Report", "failure_modes": modes}))

    return script


def _mode(tid, title, where, signature=None):
    m = {"title": title, "evidence": [{"trace_id": tid}], "suspected_change": where}
    if signature:
        m["signature"] = signature
    return m


def test_final_answer_attribution_reaches_the_failure_mode(scripted, make_settings, tau_store, repo, tmp_path):
    from engine.llm.reasoner import to_reason_result

    tid = tau_store.trace_ids[0]
    sig = {"field": "any", "regex": "reservation"}
    srv = scripted(_final([_mode(tid, "kept", "agent/tools.py:2", sig), _mode(tid, "dropped", "README:1"),
                           _mode(tid, "outside", "../secret.py")]))
    settings = make_settings(srv, repo_path=repo, diff_base="main")
    result = asyncio.run(run_engine(settings, tau_store))
    by_title = {m.title: m for m in result.modes}
    assert by_title["kept"].suspected_change == "agent/tools.py:2" and by_title["kept"].verified
    assert by_title["dropped"].suspected_change is None and by_title["outside"].suspected_change is None
    assert "LLM suspected_change dropped from 2 modes: 1 not in a file the change under review touched, " \
        "1 outside the repository" in result.notes
    assert to_reason_result(result).modes[0].suspected_change == "agent/tools.py:2"
    # nothing about the repository known: every attribution is dropped, the modes stand
    srv2 = scripted(_final([_mode(tid, "kept", "agent/tools.py:2", sig)]))
    bare = asyncio.run(run_engine(make_settings(srv2, cache_dir=tmp_path / "c2"), tau_store))
    assert bare.modes and bare.modes[0].suspected_change is None
    assert "LLM suspected_change dropped from 1 mode: 1 no repository to check it against" in bare.notes


def test_carried_onto_recounted_modes_and_shown_in_the_fix_brief(scripted, make_settings, tau_path, repo, tmp_path,
                                                                 monkeypatch):
    """The orchestrator rebuilds signature modes from the library, then puts the checked attribution back
    (``carry_suspected_changes``: by signature id, also through a merge into a detector mode); the brief shows it."""
    from engine.llm import make_reasoner
    from engine.publish.brief import FixBrief
    from engine.run import run_analysis
    from engine.traces.store import TraceStore

    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    store = TraceStore.open([tau_path])
    tid = store.trace_ids[0]
    sig = {"field": "any", "regex": "reservation"}
    srv = scripted(_final([_mode(tid, "reservation trouble", "agent/tools.py:2", sig)]))
    reasoner = make_reasoner(make_settings(srv, repo_path=repo, diff_base="main"))
    out = tmp_path / "out"
    outcome = run_analysis([tau_path], out, reasoners=[reasoner], fail_on="never")
    proposed = reasoner.last.modes
    assert proposed and proposed[0].suspected_change == "agent/tools.py:2"
    import json

    written = json.loads((out / "findings.json").read_text())["failure_modes"]
    assert [(m["suspected_change"], m["signature"] is not None) for m in written if m["suspected_change"]] == [
        ("agent/tools.py:2", True)]
    FixBrief(repo).publish(outcome.findings, out)
    assert "`agent/tools.py:2`" in (out / "fix-brief.md").read_text()
