"""engine.safe_io: atomic replacement (a failed write leaves the old file whole) and regular files only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.safe_io import (
    UnsafePathError,
    atomic_write_bytes,
    atomic_write_text,
    atomic_writer,
    check_regular_input,
    check_regular_output,
    read_regular_bytes,
)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_replaces_content_keeps_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "findings.json"
    atomic_write_text(target, "first\n")
    assert target.read_text() == "first\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    target.chmod(0o640)
    atomic_write_bytes(target, b"second\n")
    assert target.read_bytes() == b"second\n" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _leftovers(tmp_path) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_error_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "baseline.json"
    target.write_text("old and valid\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"half of the new con")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old and valid\n" and _leftovers(tmp_path) == []


WRITE_UNDER_FILE_SIZE_LIMIT = """
import resource, signal, sys
from engine.safe_io import atomic_write_bytes
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # `ulimit -f 4`: a disk that fills up at 4 KB
try:
    atomic_write_bytes(sys.argv[1], b"x" * 100_000)
except OSError as exc:
    print(type(exc).__name__, exc.errno)
    sys.exit(7)
"""


def test_a_full_disk_never_leaves_a_truncated_file(tmp_path: Path) -> None:
    target = tmp_path / "baseline.json"
    target.write_text('{"schema_version": 1}\n')
    proc = subprocess.run([sys.executable, "-c", WRITE_UNDER_FILE_SIZE_LIMIT, str(target)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 7, proc.stderr
    assert target.read_text() == '{"schema_version": 1}\n'
    assert _leftovers(tmp_path) == []


def test_fifo_input_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "baseline.json"
    os.mkfifo(fifo)

    done, released = threading.Event(), []

    def unblock() -> None:  # if a read still blocks on the FIFO after 10 s, a writer releases it (and the test fails)
        if done.wait(10):
            return
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only while a reader has the FIFO open
        except OSError:
            return
        released.append(True)
        os.close(fd)

    unblocker = threading.Thread(target=unblock, daemon=True)
    unblocker.start()
    with pytest.raises(UnsafePathError, match="is a FIFO, not a regular file"):
        read_regular_bytes(fifo)
    with pytest.raises(UnsafePathError, match="FIFO"):
        check_regular_input(fifo)
    done.set()
    unblocker.join()
    assert released == []  # refused without ever waiting for a writer


def test_inputs_may_be_symlinks_and_directories_when_allowed(tmp_path: Path) -> None:
    real = tmp_path / "t.jsonl"
    real.write_text("{}\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    check_regular_input(link)
    assert read_regular_bytes(link) == b"{}\n"
    check_regular_input(tmp_path, allow_dir=True)
    with pytest.raises(UnsafePathError, match="directory"):
        check_regular_input(tmp_path)
    with pytest.raises(UnsafePathError, match="character device"):
        check_regular_input("/dev/null")
    with pytest.raises(FileNotFoundError):
        check_regular_input(tmp_path / "missing")


def test_outputs_never_follow_a_symlink_nor_replace_a_device_fifo_or_directory(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(victim)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((link, "symlink"), (fifo, "FIFO"), (Path("/dev/null"), "character device"),
                       (tmp_path, "directory")):
        with pytest.raises(UnsafePathError, match=kind):
            check_regular_output(path)
        with pytest.raises(UnsafePathError, match=kind):
            atomic_write_text(path, "overwritten\n")
    assert victim.read_text() == "precious\n" and link.is_symlink() and stat.S_ISFIFO(fifo.stat().st_mode)
    assert _leftovers(tmp_path) == []
    check_regular_output(tmp_path / "new.json")  # absent is fine
    check_regular_output(victim)  # a regular file is fine
