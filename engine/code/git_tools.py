"""Read-only git tools over the project under test: ``git_diff``, ``git_log``, ``git_show``, ``git_blame``.

``git`` runs as a subprocess with a fixed argument vector (no shell), a timeout and a byte budget;
refs are checked to be refs (never an option), paths go after ``--`` and must stay inside the
repository. The change under review is the diff from the merge base with the base ref —
``--halo-diff-base`` or ``GITHUB_BASE_REF`` (a pull request's target branch on GitHub Actions) —
to the working tree. Without git, outside a work tree or without a base, the tools are absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from engine.code.tools import DEFAULT_BUDGET, CodeToolError, resolve_inside

GIT_TIMEOUT_S = 10.0
_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/@{}~^+-]{0,200}$")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.M)
_ENV = {"GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C"}


class GitDiffArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field("", description="only this file or folder (relative to the repository root)")
    context: int = Field(3, ge=0, le=20, description="lines of context around each change")


class GitLogArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field("", description="only commits touching this path")
    max_count: int = Field(20, ge=1, le=100)


class GitShowArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rev: str = Field(..., description="a commit (hash, branch, HEAD~2...)")
    path: str = Field("", description="only this path's part of the commit")


class GitBlameArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(..., min_length=1)
    start_line: int = Field(1, ge=1)
    end_line: int | None = Field(None, ge=1, description="default: start_line + 39")


def _git() -> str | None:
    return shutil.which("git")


def run_git(root: Path, args: list[str], *, budget: int = DEFAULT_BUDGET, timeout: float = GIT_TIMEOUT_S) -> str:
    """``git -C root <args>`` (read-only subcommands only), stdout capped to ``budget`` bytes."""
    exe = _git()
    if exe is None:
        raise CodeToolError("git is not installed")
    if args[0] not in ("diff", "log", "show", "blame", "rev-parse", "merge-base", "ls-files"):
        raise CodeToolError(f"git {args[0]} is not a read-only command this tool runs")
    env = {**os.environ, **_ENV}
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [exe, "-C", str(root), "--no-pager", "-c", "core.quotepath=off", *args],
            capture_output=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL, check=False,
        )
    except subprocess.TimeoutExpired:
        raise CodeToolError(f"git {args[0]} took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        first = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["failed"])[0]
        raise CodeToolError(f"git {args[0]}: {first[:300]}")
    out = proc.stdout
    if len(out) > budget:
        return out[: budget - 120].decode("utf-8", "ignore") + f"\n[truncated: {len(out):,} bytes; narrow with `path`]"
    return out.decode("utf-8", "replace")


def check_ref(ref: str) -> str:
    if not _REF.match(ref) or ".." in ref:
        raise CodeToolError(f"{ref!r} is not a git revision")
    return ref


def git_root(path: Path) -> Path | None:
    """The work tree ``path`` is in, or None (no git, not a repository)."""
    if _git() is None or not Path(path).is_dir():
        return None
    try:
        top = run_git(Path(path), ["rev-parse", "--show-toplevel"], timeout=5).strip()
    except CodeToolError:
        return None
    return Path(top) if top else None


def diff_base(root: Path, explicit: str | None = None) -> str | None:
    """The merge base of HEAD with the base ref (``explicit``, else ``GITHUB_BASE_REF``), or None."""
    ref = explicit or os.environ.get("GITHUB_BASE_REF") or ""
    if not ref:
        return None
    for candidate in (ref, f"origin/{ref}"):
        try:
            check_ref(candidate)
            return run_git(root, ["merge-base", "HEAD", candidate], timeout=5).strip() or None
        except CodeToolError:
            continue
    return None


def _path_args(root: Path, path: str) -> list[str]:
    if not path:
        return []
    return ["--", resolve_inside(root, path, want_file=None).relative_to(root.resolve()).as_posix()]


@dataclass
class GitTools:
    """The git tools bound to one repository and one base commit (``base`` None: no ``git_diff``)."""

    root: Path
    base: str | None
    budget: int = DEFAULT_BUDGET

    def git_diff(self, args: GitDiffArgs) -> str:
        if self.base is None:
            raise CodeToolError("no base ref: set --halo-diff-base or GITHUB_BASE_REF")
        out = run_git(self.root, ["diff", "--relative", "--no-color", "--no-ext-diff", f"-U{args.context}", self.base,
                                  *_path_args(self.root, args.path)], budget=self.budget)
        return out or "(no changes)"

    def git_log(self, args: GitLogArgs) -> str:
        return run_git(self.root, ["log", "--no-color", f"-n{args.max_count}", "--date=short",
                                   "--format=%h %ad %an: %s", *_path_args(self.root, args.path)],
                       budget=self.budget) or "(no commits)"

    def git_show(self, args: GitShowArgs) -> str:
        return run_git(self.root, ["show", "--no-color", "--no-ext-diff", "--stat", "--patch", check_ref(args.rev),
                                   *_path_args(self.root, args.path)], budget=self.budget)

    def git_blame(self, args: GitBlameArgs) -> str:
        path = resolve_inside(self.root, args.path, want_file=True).relative_to(self.root.resolve()).as_posix()
        end = args.end_line or args.start_line + 39
        if end < args.start_line:
            raise CodeToolError("end_line is before start_line")
        return run_git(self.root, ["blame", "--date=short", f"-L{args.start_line},{end}", "--", path],
                       budget=self.budget)


def changed_lines(root: Path, base: str) -> dict[str, set[int]]:
    """Lines of the working tree that differ from ``base``: {repo-relative path: new-side line numbers}.

    A pure deletion marks the line after it; untracked files count as changed throughout.
    """
    out: dict[str, set[int]] = {}
    text = run_git(root, ["diff", "--relative", "--no-color", "--no-ext-diff", "-U0", check_ref(base)], budget=50_000_000)
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("+++ "):
            name = line[4:]
            current = name[2:] if name.startswith("b/") else None
        elif line.startswith("@@") and current is not None:
            m = _HUNK.match(line)
            if m:
                start, count = int(m.group(1)), int(m.group(2) or "1")
                out.setdefault(current, set()).update(range(start, start + max(count, 1)))
    untracked = run_git(root, ["ls-files", "--others", "--exclude-standard"], budget=5_000_000)
    for name in untracked.splitlines():
        if name:
            out[name] = {0}  # 0: every line
    return out
