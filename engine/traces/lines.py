"""Lines of a binary file as views into one reused buffer: ``for line in fh`` without a bytes object per line.

Why: at a million 2 KB lines, allocating and copying each line (what file iteration does) costs
about a fifth of a JSON parse; ``msgspec`` decodes straight from a ``memoryview``. Lines are
split exactly as file iteration splits them (on ``\\n``, which each line keeps; the last line may
lack it). The views are only valid until the next line is requested, and anything decoded
from them must not keep referencing them (``msgspec.Raw`` does: copy it first).

UTF-8 validity is checked here because msgspec does not validate the values it skips: a line
that is not valid UTF-8 is yielded as ``bytes`` (never as a view) so callers can send it to a
strict decoder instead. Whole buffers are checked with one ``isascii``; only non-ASCII buffers
pay a per-line decode.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BufferedIOBase

BUFFER = 1 << 22


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def iter_views(fh: BufferedIOBase, size: int = BUFFER) -> Iterator[memoryview | bytes]:
    """Every line of ``fh``: a ``memoryview`` when it is valid UTF-8, else ``bytes``."""
    buf = bytearray(size)
    mv = memoryview(buf)
    start = end = 0  # unread data is buf[start:end]
    eof = False
    ascii_buf = False  # buf[:end] is all ASCII (only known for completely filled buffers)
    find = buf.find
    while True:
        nl = find(b"\n", start, end)
        if nl >= 0:
            nl += 1
            if ascii_buf:
                yield mv[start:nl]
            else:
                line = bytes(mv[start:nl])
                yield line if not line.isascii() and not _valid_utf8(line) else mv[start:nl]
            start = nl
            continue
        if eof:
            if start < end:
                line = bytes(mv[start:end])
                yield line if not line.isascii() and not _valid_utf8(line) else mv[start:end]
            return
        tail = end - start  # a partial line: move it to the front, then fill the rest
        if tail == len(buf):  # one line longer than the buffer: grow it
            buf = bytearray(2 * len(buf))
            buf[:tail] = mv[start:end]
            mv = memoryview(buf)
            find = buf.find
        elif tail:
            mv[:tail] = bytes(mv[start:end])
        start, end = 0, tail
        while end < len(buf):
            n = fh.readinto(mv[end:])
            if not n:
                eof = True
                break
            end += n
        ascii_buf = not eof and buf.isascii()
