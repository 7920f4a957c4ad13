"""The code and git tools as an LLM-engine ``ToolProvider`` (``engine.llm.tools.base``).

``code_tool_provider(repo_root, diff_base)`` gives the provider; pass it to ``make_reasoner(...,
providers=[...])``. ``list_files``/``grep_files``/``read_file`` are offered whenever the root is a
folder; ``git_log``/``git_show``/``git_blame`` only inside a git work tree; ``git_diff`` only when a
base ref resolves. The provider's ``changed_files`` line tells the engine what the change touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.code import tools as code
from engine.code.git_tools import (
    GitBlameArgs,
    GitDiffArgs,
    GitLogArgs,
    GitShowArgs,
    GitTools,
    changed_lines,
    diff_base,
    git_root,
)
from engine.code.tools import CodeToolError


@dataclass
class CodeTool:
    """One read-only tool: a plain function of its pydantic arguments, run in a worker thread.

    Not through the run's ``run_blocking``: that serialises trace-store calls, and a grep over the
    repository has no reason to wait for them (or make them wait).
    """

    name: str
    description: str
    arguments: type[BaseModel]
    func: Callable[[Any], str]
    scope: str = "all"

    async def run(self, ctx: Any, args: Any) -> Any:
        from engine.llm.tools.base import ToolError

        try:
            return await asyncio.to_thread(self.func, args)
        except CodeToolError as exc:
            raise ToolError(str(exc)) from None


class CodeToolProvider:
    """Contributes the code tools (and the git tools inside a work tree) for one repository."""

    name = "code tools"

    def __init__(self, repo_root: Path | None = None, diff_base_ref: str | None = None,
                 budget: int = code.DEFAULT_BUDGET) -> None:
        self.root = Path(repo_root) if repo_root is not None else None
        self.diff_base_ref = diff_base_ref
        self.budget = budget

    def tools(self, env: Any = None) -> list[Any]:
        """The tools for this run; without a root of its own, the run's ``env.extras["repo_root"]``."""
        from engine.llm.tools.base import ToolUnavailable

        extras = getattr(env, "extras", None) or {}
        root = self.root or (Path(extras["repo_root"]) if extras.get("repo_root") else None)
        base_ref = self.diff_base_ref or extras.get("diff_base")
        if root is None:
            raise ToolUnavailable("no repository given (--halo-repo / --repo)")
        if not root.is_dir():
            raise ToolUnavailable(f"no repository at {root}")
        b = self.budget
        out = [
            CodeTool("list_files", "List files of the project under test (paths relative to its root).",
                     code.ListFilesArgs, lambda a: code.list_files(root, a, b)),
            CodeTool("grep_files", "Search the project's files with a regular expression; returns path:line: text.",
                     code.GrepFilesArgs, lambda a: code.grep_files(root, a, b)),
            CodeTool("read_file", "Read numbered lines of a project file ('path' or 'path:line' for a window).",
                     code.ReadFileArgs, lambda a: code.read_file(root, a, b)),
        ]
        if git_root(root) is None:
            return out
        base = diff_base(root, base_ref)
        git = GitTools(root, base, b)
        out += [
            CodeTool("git_log", "Recent commits (optionally touching a path).", GitLogArgs, git.git_log),
            CodeTool("git_show", "One commit's message, stat and patch.", GitShowArgs, git.git_show),
            CodeTool("git_blame", "Who last changed lines start_line..end_line of a file, and in which commit.",
                     GitBlameArgs, git.git_blame),
        ]
        if base is not None:
            touched = changed_files(root, base)
            out.append(CodeTool(
                "git_diff",
                "The change under review (from the merge base with the base branch to the working tree). "
                f"It touches: {', '.join(touched[:30]) or 'nothing'}{' ...' if len(touched) > 30 else ''}.",
                GitDiffArgs, git.git_diff))
        return out

    async def close(self) -> None:
        return None


def changed_files(root: Path, base: str) -> list[str]:
    try:
        return sorted(changed_lines(root, base))
    except CodeToolError:
        return []


def code_tool_provider(repo_root: Path | None = None, diff_base_ref: str | None = None) -> CodeToolProvider:
    """The provider: ``make_reasoner(settings, providers=[..., code_tool_provider(root, base)])``, or, with no
    root, ``engine.llm.engine.register_tool_provider(code_tool_provider)`` reading the run's ``env.extras``."""
    return CodeToolProvider(repo_root, diff_base_ref)
