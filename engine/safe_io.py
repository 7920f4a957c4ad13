"""Safe file I/O for everything halo reads as a whole file or writes as a result.

Why: a FIFO given as a baseline blocks ``open()`` forever, a writer that follows a symlink
overwrites whatever it points at, and a disk filling up mid-write leaves a truncated file
that the next run reads as valid. So:

* ``check_regular_input(path)`` — refuse FIFOs, devices and sockets before opening
  (symlinks to regular files are fine: reading through a link is harmless).
* ``read_regular_bytes(path)`` — read a whole file, opened non-blocking and checked with
  ``fstat`` so a FIFO swapped in after the check still cannot hang us.
* ``check_regular_output(path)`` — an output may be absent or a regular file; a symlink,
  directory, FIFO, device or socket is refused (we never write through or over them).
* ``atomic_write_bytes(path, data)`` / ``atomic_write_text(path, text)`` — temporary file in
  the same directory, ``fsync``, ``os.replace``, ``fsync`` of the directory: readers see the
  old file or the new one, never a partial one; on any error the old file is untouched.
* ``atomic_writer(path)`` — the same as a context manager yielding a binary file, for
  outputs written in pieces (e.g. ``halo convert -o``).

Every refusal raises ``UnsafePathError`` (a ``ValueError``) with a one-line message naming
the path and what it is.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "UnsafePathError",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_writer",
    "check_regular_input",
    "check_regular_output",
    "read_regular_bytes",
]


class UnsafePathError(ValueError):
    """A path that is not a regular file where one is needed (FIFO, device, socket, symlink output...)."""


def _kind(mode: int) -> str:
    """A short noun for a file type, for error messages."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "not a regular file"


def check_regular_input(path: str | os.PathLike[str], *, allow_dir: bool = False) -> None:
    """Raise ``UnsafePathError`` unless ``path`` is a regular file (or a directory when ``allow_dir``).

    A missing path raises ``FileNotFoundError`` (callers already word that case their own way).
    """
    st = os.stat(path)  # follows symlinks: what would be read
    if stat.S_ISREG(st.st_mode) or (allow_dir and stat.S_ISDIR(st.st_mode)):
        return
    raise UnsafePathError(f"{os.fspath(path)} is {_kind(st.st_mode)}, not a regular file: refused")


def read_regular_bytes(path: str | os.PathLike[str]) -> bytes:
    """The whole content of a regular file; ``UnsafePathError`` for anything else, never a hang."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{os.fspath(path)} is {_kind(st.st_mode)}, not a regular file: refused")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as fh:
            fd = -1  # owned by fh now
            return fh.read()
    finally:
        if fd >= 0:
            os.close(fd)


def check_regular_output(path: str | os.PathLike[str]) -> None:
    """Raise ``UnsafePathError`` unless ``path`` is absent or a regular file (a symlink is refused)."""
    try:
        st = os.lstat(path)  # the link itself: a symlink output is never followed or replaced
    except (FileNotFoundError, NotADirectoryError):  # absent (creating it is the writer's problem)
        return
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{os.fspath(path)} is {_kind(st.st_mode)}: refusing to write over it")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` atomically when the block ends without error.

    The temporary file lives in ``path``'s directory (``os.replace`` must not cross filesystems)
    and takes the existing file's permissions, or the umask default for a new file.
    """
    target = Path(path)
    check_regular_output(target)
    directory = target.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        if hasattr(os, "fchmod"):  # POSIX; elsewhere the temp file keeps the platform default
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fd = -1
            try:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:  # name the file we meant to write, not the hidden temp file
                if exc.filename is None or exc.filename == tmp_name:
                    raise OSError(exc.errno, exc.strerror or str(exc), os.fspath(target)) from exc
                raise
        check_regular_output(target)  # refuse if a symlink/FIFO appeared meanwhile
        os.replace(tmp_name, target)
        tmp_name = ""
        _fsync_dir(directory)
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp_name:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see ``atomic_writer``)."""
    with atomic_writer(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically (see ``atomic_writer``)."""
    atomic_write_bytes(path, text.encode(encoding))


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; some filesystems refuse fsync on a directory, which is not our error."""
    try:
        dfd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
