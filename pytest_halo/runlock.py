"""Which runs own the part files in ``.halo/parts``, and the lock that serialises publishing.

Two ``pytest --halo`` sessions may share one project (IDE + terminal, two CI jobs). Each
session's controller holds ``parts/<run id>.lock`` (``flock``) for its lifetime, so a part
file whose run's lock is free (or gone) was left by a killed run: it is removed and
reported, never merged. Finishing (merge, tests.jsonl, analysis, publishing) happens
under ``.halo/.finish.lock``, so the final files all come from one run.

Locks are advisory ``fcntl.flock`` locks, released by the kernel when a process dies.
Nothing here raises into the run: a lock that cannot be taken is reported by the caller.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are then not protected from each other
    fcntl = None  # type: ignore[assignment]

_RUN_FILE = re.compile(r"^(\d{8}T\d{6}-[0-9a-f]{6})(?:-.*|\.lock)$")
FINISH_WAIT_S = 300.0


def _try_flock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class RunLock:
    """The live-run marker ``parts/<run id>.lock``, held from configure to the end of the merge."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, parts_dir: Path, run_id: str) -> RunLock:
        """Create and lock the marker (raises OSError when the directory is unusable)."""
        parts_dir.mkdir(parents=True, exist_ok=True)
        path = parts_dir / f"{run_id}.lock"
        for _ in range(5):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_flock(fd):  # run ids are unique: someone sweeping it as stale right now
                os.close(fd)
                time.sleep(0.05)
                continue
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return cls(path, fd)
            os.close(fd)  # a sweeper unlinked it between our open and our lock: take a fresh one
        raise OSError(f"could not lock {path}")

    def release(self) -> None:
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()  # only when no other run's files are there


@dataclass
class Swept:
    """Part files removed because the run that wrote them is gone."""

    runs: list[str] = field(default_factory=list)
    files: int = 0

    def line(self) -> str | None:
        if not self.files:
            return None
        runs = ", ".join(self.runs[:3]) + (f" and {len(self.runs) - 3} more" if len(self.runs) > 3 else "")
        return (f"halo: removed {self.files} part files left by an interrupted earlier run ({runs}); "
                "they were not merged into this run")


def sweep_stale(parts_dir: Path, own_run_id: str) -> Swept:
    """Remove the part files of runs whose lock is free; files of live runs are left alone."""
    swept = Swept()
    try:
        names = os.listdir(parts_dir)
    except OSError:
        return swept
    by_run: dict[str, list[str]] = {}
    for name in names:
        m = _RUN_FILE.match(name)
        if m and m.group(1) != own_run_id:
            by_run.setdefault(m.group(1), []).append(name)
    for run_id, files in sorted(by_run.items()):
        lock = parts_dir / f"{run_id}.lock"
        fd = -1
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            pass
        except OSError:
            continue
        try:
            if fd >= 0 and not _try_flock(fd):
                continue  # a live run
            removed = 0
            for name in files:
                if name.endswith(".lock"):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    (parts_dir / name).unlink()
                    removed += 1
            with contextlib.suppress(OSError):
                lock.unlink()  # still holding it: no live run can be using this inode
            if removed:
                swept.runs.append(run_id)
                swept.files += removed
        except OSError:
            continue
        finally:
            if fd >= 0:
                os.close(fd)
    return swept


class FinishLock:
    """``.halo/.finish.lock``: one run at a time merges, analyses and publishes into the directory."""

    def __init__(self, halo_dir: Path) -> None:
        self.path = halo_dir / ".finish.lock"
        self._fd = -1
        self.waited_out = False

    def __enter__(self) -> FinishLock:
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return self  # the directory's own problem is reported by whoever writes there
        deadline = time.monotonic() + FINISH_WAIT_S
        while not _try_flock(self._fd):
            if time.monotonic() > deadline:
                self.waited_out = True
                break
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
