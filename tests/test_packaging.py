"""What `pip install pytest-halo` (and the GitHub Action, which installs the action's checkout) gets.

Built as a real wheel from a copy of the source tree: a runtime file left out of the package data
would make an installed halo silently skip what needs it (report.html without its assets).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "pytest_halo")


def _runtime_files() -> set[str]:
    """Every non-Python file the packages hold (assets, sandbox scripts)."""
    found = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".py", ".pyc"):
                found.add(path.relative_to(REPO).as_posix())
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src")
    for name in (*PACKAGES, "pyproject.toml", "README.md"):
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(origin, src / name)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(out)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    (built,) = out.glob("*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_carries_every_runtime_file(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    needed = _runtime_files()
    assert {"engine/publish/html_assets/report.js", "engine/publish/html_assets/report.css",
            "engine/sandbox/runner.mjs"} <= needed
    assert needed - names == set()


def test_the_wheel_declares_the_entry_points(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[pytest11]\nhalo = pytest_halo.plugin" in text
    assert "halo = pytest_halo.engine_check:halo_main" in text
