"""The LLM engine's read-only code tools: answers inside the root only, text only, within budget."""

from __future__ import annotations

import os

import pytest

from engine.code.tools import (
    CodeToolError,
    GrepFilesArgs,
    ListFilesArgs,
    ReadFileArgs,
    grep_files,
    list_files,
    read_file,
)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "tools.py").write_text("".join(f"line {i}\n" for i in range(1, 301)) + "def lookup_order():\n")
    (root / "pkg" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    (root / "pkg" / "latin1.txt").write_bytes("caf\xe9 lookup_order\n".encode("latin-1") * 2 + b"\xff\xfe\x00")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("lookup_order in git internals\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("lookup_order TOP SECRET outside the repository\n")
    os.symlink(secret, root / "pkg" / "link_out.py")
    os.symlink(tmp_path, root / "pkg" / "dir_out")
    return root


@pytest.mark.parametrize("path", ["../secret.txt", "pkg/../../secret.txt", "/etc/passwd", "pkg/link_out.py",
                                  "pkg/dir_out/secret.txt", "C:/Windows/win.ini", "pkg\\..\\..\\secret.txt"])
def test_read_file_refuses_paths_leading_out_of_the_root(repo, path):
    with pytest.raises(CodeToolError):
        read_file(repo, ReadFileArgs(path=path))


@pytest.mark.parametrize("path", [".git/config", "./.git/config", "pkg/../.git/config", "pkg/git_link"])
def test_git_internals_are_never_read_or_searched(repo, path):
    os.symlink(repo / ".git" / "config", repo / "pkg" / "git_link")
    with pytest.raises(CodeToolError, match="version-control internals|'..' is not allowed"):
        read_file(repo, ReadFileArgs(path=path))
    with pytest.raises(CodeToolError, match="version-control internals"):
        grep_files(repo, GrepFilesArgs(pattern="lookup_order", under=".git", suffix=""))
    with pytest.raises(CodeToolError, match="version-control internals"):
        list_files(repo, ListFilesArgs(under=".git"))


def test_read_file_refuses_binary_and_reads_line_windows(repo):
    with pytest.raises(CodeToolError, match="binary"):
        read_file(repo, ReadFileArgs(path="pkg/logo.png"))
    with pytest.raises(CodeToolError, match="binary"):
        read_file(repo, ReadFileArgs(path="pkg/latin1.txt"))
    out = read_file(repo, ReadFileArgs(path="pkg/tools.py", start_line=10, end_line=12))
    assert out.splitlines() == ["pkg/tools.py lines 10-12 of 301", "   10  line 10", "   11  line 11", "   12  line 12"]
    around = read_file(repo, ReadFileArgs(path="pkg/tools.py:301")).splitlines()
    assert around[0] == "pkg/tools.py lines 281-301 of 301" and around[-1].endswith("def lookup_order():")


def test_read_file_stays_within_its_byte_budget(repo):
    out = read_file(repo, ReadFileArgs(path="pkg/tools.py", start_line=1, end_line=300), budget=500)
    assert len(out.encode()) <= 600 and "[truncated:" in out


def test_list_and_grep_skip_symlinks_out_git_internals_and_binary(repo):
    files = list_files(repo, ListFilesArgs()).splitlines()
    assert files == ["pkg/latin1.txt", "pkg/logo.png", "pkg/tools.py"]
    hits = grep_files(repo, GrepFilesArgs(pattern=r"lookup_\w+", suffix="")).splitlines()
    assert hits == ["pkg/tools.py:301: def lookup_order():"]
    with pytest.raises(CodeToolError):
        list_files(repo, ListFilesArgs(under="../"))
    with pytest.raises(CodeToolError):
        grep_files(repo, GrepFilesArgs(pattern="x", under="pkg/dir_out"))


def test_grep_is_linear_time_and_capped(repo):
    (repo / "pkg" / "big.py").write_text("a" * 5000 + "!\n" + "match me\n" * 100)
    out = grep_files(repo, GrepFilesArgs(pattern=r"(a+)+$", suffix=".py"))  # catastrophic for backtracking regexes
    assert out == "(no matches)"
    capped = grep_files(repo, GrepFilesArgs(pattern="match", max_matches=5)).splitlines()
    assert len(capped) == 6 and capped[-1].startswith("[stopped at 5 matches")
    with pytest.raises(CodeToolError, match="bad pattern"):
        grep_files(repo, GrepFilesArgs(pattern="(unclosed"))
