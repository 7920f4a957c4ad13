"""Which files of a repository count as the project's own Python source, and reading them safely.

Tests, virtual environments, caches and vendored packages are skipped: a tool name that appears in
a test or in ``site-packages`` says nothing about where the project defines it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

VCS_DIRS = frozenset({".git", ".hg", ".svn"})  # never read: remotes and CI checkouts keep credentials here
NOT_PROJECT_DIRS = VCS_DIRS | {
    ".venv", "venv", "node_modules", "__pycache__", "site-packages", ".tox", ".nox", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".halo",
}
SKIP_DIRS = NOT_PROJECT_DIRS | {"env", ".env", "build", "dist", ".eggs", "tests", "test", "testing"}
MAX_SOURCE_BYTES = 1_000_000


def is_test_file(name: str) -> bool:
    """pytest's default test-file patterns, plus ``conftest.py``."""
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def iter_source_files(root: Path) -> Iterator[Path]:
    """The project's ``.py`` files under ``root`` (sorted, deterministic); never follows symlinks."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if name.endswith(".py") and not is_test_file(name):
                path = Path(dirpath, name)
                if not path.is_symlink():
                    yield path


def read_source(path: Path) -> bytes | None:
    """The file's bytes, or None when it is too big, not a regular file, or unreadable."""
    try:
        st = path.stat()
        if not path.is_file() or st.st_size > MAX_SOURCE_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return None
