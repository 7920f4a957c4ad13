"""Git tools and change attribution over a real repository made with the real ``git``."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from engine.code.changes import attribute_changes
from engine.code.git_tools import (
    GitBlameArgs,
    GitDiffArgs,
    GitLogArgs,
    GitShowArgs,
    GitTools,
    changed_lines,
    diff_base,
)
from engine.code.locate import locate_modes
from engine.code.provider import code_tool_provider
from engine.code.tools import CodeToolError
from engine.findings import FailureMode, Findings, Gate, GateEntry

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

TOOLS_V1 = '''
from agents import function_tool


@function_tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    return "ok"


@function_tool
def refund(order_id: str, amount: float) -> str:
    """Refund."""
    return "refunded"
'''


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(root), "PATH": "/usr/bin:/bin"}
                          ).stdout


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_BASE_REF", raising=False)
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "tools.py").write_text(textwrap.dedent(TOOLS_V1).lstrip())
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "tools")
    git(root, "checkout", "-q", "-b", "feature")
    # the change under review: refund's body changes (lookup_order does not), and a new untracked prompt file
    text = (root / "app" / "tools.py").read_text().replace('return "refunded"', 'raise ValueError("refunds disabled")')
    (root / "app" / "tools.py").write_text(text)
    git(root, "commit", "-qam", "disable refunds")
    (root / "app" / "prompts.py").write_text('SYSTEM = "You are terse."\n')
    return root


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_changed_lines_from_the_merge_base_with_github_base_ref(repo, monkeypatch):
    assert diff_base(repo) is None  # no base named: no diff
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    base = diff_base(repo)
    assert base == git(repo, "rev-parse", "main").strip()
    changed = changed_lines(repo, base)
    assert changed["app/tools.py"] == {line_of(repo / "app" / "tools.py", "refunds disabled")}
    assert changed["app/prompts.py"] == {0}  # untracked: every line


def test_new_mode_is_attributed_to_the_changed_tool_only(repo):
    modes = [FailureMode(id="fm-refund", title="t", category="tool_error", detector="tool_error",
                         key="refund\x1frefunds disabled"),
             FailureMode(id="fm-lookup", title="t", category="retry_loop", detector="retry_loop", key="lookup_order")]
    findings = Findings(failure_modes=modes,
                        gate=Gate(baseline="b.json", new=[GateEntry(id="fm-refund", title="t"),
                                                           GateEntry(id="fm-lookup", title="t")]))
    locate_modes(findings, repo)
    attribute_changes(findings, repo, "main")
    raise_line = line_of(repo / "app" / "tools.py", "refunds disabled")
    assert findings.mode("fm-refund").suspected_change == f"app/tools.py:{raise_line}"
    assert findings.mode("fm-refund").locations[-1].kind == "changed_line"
    assert findings.mode("fm-lookup").suspected_change is None  # its tool was not touched
    # a persisting mode is not the change's fault
    persisting = Findings(failure_modes=[modes[0].model_copy(update={"suspected_change": None, "locations": []})],
                          gate=Gate(baseline="b.json", persisting=[GateEntry(id="fm-refund", title="t")]))
    locate_modes(persisting, repo)
    attribute_changes(persisting, repo, "main")
    assert persisting.failure_modes[0].suspected_change is None


def test_git_tools_are_read_only_and_refuse_options_and_paths_out(repo):
    base = git(repo, "rev-parse", "main").strip()
    tools = GitTools(repo, base)
    assert "+    raise ValueError(\"refunds disabled\")" in tools.git_diff(GitDiffArgs())
    assert "disable refunds" in tools.git_log(GitLogArgs(path="app/tools.py"))
    assert "disable refunds" in tools.git_log(GitLogArgs(path="app"))  # a folder works as well as a file
    with pytest.raises(CodeToolError, match="not a file or folder"):
        tools.git_log(GitLogArgs(path="app/missing.py"))
    assert "disable refunds" in tools.git_show(GitShowArgs(rev="HEAD"))
    assert "refunds disabled" in tools.git_blame(GitBlameArgs(path="app/tools.py", start_line=1, end_line=20))
    for bad in ("--output=/tmp/pwned", "-p", "HEAD;rm -rf /", "a..b"):
        with pytest.raises(CodeToolError):
            tools.git_show(GitShowArgs(rev=bad))
    with pytest.raises(CodeToolError):
        tools.git_blame(GitBlameArgs(path="../outside.py"))
    with pytest.raises(CodeToolError):
        tools.git_log(GitLogArgs(path="/etc"))
    assert not (Path("/tmp/pwned")).exists()
    assert git(repo, "status", "--porcelain").strip() == "?? app/prompts.py"  # nothing written


def test_provider_offers_git_tools_only_inside_a_work_tree(repo, tmp_path, monkeypatch):
    from engine.llm.tools.base import (
        AgentInfo,
        ToolCallContext,
        ToolEnvironment,
        ToolError,
        check_provider,
        check_tool,
    )

    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    provider = check_provider(code_tool_provider(repo))
    tools = {t.name: check_tool(t) for t in provider.tools(None)}
    assert set(tools) == {"list_files", "grep_files", "read_file", "git_log", "git_show", "git_blame", "git_diff"}
    assert "app/prompts.py" in tools["git_diff"].description and "app/tools.py" in tools["git_diff"].description
    ctx = ToolCallContext(agent=AgentInfo("root", 0, True), env=ToolEnvironment(store=None, settings=None))
    text = asyncio.run(tools["read_file"].run(ctx, tools["read_file"].arguments(path="app/tools.py:5")))
    assert "def lookup_order" in text
    with pytest.raises(ToolError):
        asyncio.run(tools["read_file"].run(ctx, tools["read_file"].arguments(path="../x")))

    # registered without a root, the provider reads the run's environment
    from engine.llm.tools.base import ToolUnavailable

    env = ToolEnvironment(store=None, settings=None, extras={"repo_root": str(repo), "diff_base": "main"})
    assert "git_diff" in {t.name for t in code_tool_provider().tools(env)}
    with pytest.raises(ToolUnavailable):
        code_tool_provider().tools(ToolEnvironment(store=None, settings=None))

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.py").write_text("x = 1\n")
    assert {t.name for t in code_tool_provider(plain).tools(None)} == {"list_files", "grep_files", "read_file"}
