"""``iter_views`` splits exactly like file iteration and flags invalid UTF-8 lines as bytes."""

from __future__ import annotations

import io
import random

from engine.traces.lines import iter_views


def _reference(data: bytes) -> list[tuple[bytes, bool]]:
    out = []
    for line in io.BytesIO(data):
        try:
            line.decode("utf-8")
            ok = True
        except UnicodeDecodeError:
            ok = False
        out.append((line, ok))
    return out


def test_same_lines_as_file_iteration_for_any_buffer_size() -> None:
    rng = random.Random(7)
    pieces = [b"", b"\n", b"\r\n", b"abc", b"x" * 50, b"\xc3\xa9", b"\xff", b'{"a":1}', b"\xe2\x80\x99", b" "]
    for _ in range(3000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        for size in (1, 3, 16, 4096):
            got = [(bytes(v), type(v) is memoryview) for v in iter_views(io.BytesIO(data), size)]
            assert got == _reference(data), (data, size)
