"""Incremental reading of big JSON documents (ijson): events, values built in C, positions for problems.

Document formats (an OTLP export, a ``{"spans": [...]}`` dump, a tau-bench results list) used to be
parsed whole; above ``STREAM_ABOVE`` bytes they are walked event by event instead, and only one
array item at a time is built (by ijson's C builder when the ``yajl2_c`` backend is present), so
peak memory stays flat however big the file is. Files at or below the limit keep the whole-document
path: it is faster, and its memory is bounded by the limit.

``JsonEvents`` never raises for bad JSON: the first parse error ends the stream and is kept as a
``file:line`` location plus a one-line message (``error``), after every complete item before it.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import json
import os
import re
import struct
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import ijson

from engine.traces.formats.common import BOM, GZIP_MAGIC, iter_json_values, open_binary, source_name
from engine.traces.problems import Problems

STREAM_ABOVE = 8 * 1024 * 1024  # documents larger than this (decompressed) are read incrementally
CHUNK = 16 * 1024  # bytes per read: ijson turns a whole chunk into events at once, so this bounds that list
BACKEND = ijson.backend  # "yajl2_c" when the C extension is available
Event = tuple[str, str, Any]
_OVERFLOW = ("integer overflow", "numeric (floating point) overflow")
_SNIPPET = re.compile(r"\n(?P<line>.*)\n\s*\(right here\) -*\^", re.DOTALL)


def document_size(path: Path) -> int:
    """Decompressed size of a file, read from the gzip trailer for ``.gz`` (never decompresses)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if fh.read(2) != GZIP_MAGIC or size < 18:
            return size
        fh.seek(-4, os.SEEK_END)
        isize: int = struct.unpack("<I", fh.read(4))[0]  # size mod 2**32 of the (last) member
    return max(size, isize)


def should_stream(path: Path, limit: int | None = None) -> bool:
    """True when a document is big enough to be walked incrementally instead of parsed whole."""
    return document_size(path) > (STREAM_ABOVE if limit is None else limit)


def streaming_source_key(path: Path) -> str:
    """``common.source_key`` computed by reading the file in chunks (same value, flat memory)."""
    h = hashlib.sha256()
    with open_binary(path) as fh:
        for chunk in iter(lambda: fh.read(4 * CHUNK), b""):
            h.update(chunk)
    return f"{source_name(path)}|{h.hexdigest()[:32]}"


def floats_for_decimals(value: Any) -> Any:
    """ijson's exact mode gives ``Decimal`` for non-integers; the converters expect ``float`` (as json/orjson give)."""
    t = type(value)
    if t is Decimal:
        return float(value)
    if t is dict:
        for k, v in value.items():
            tv = type(v)
            if tv is Decimal or tv is dict or tv is list:
                value[k] = floats_for_decimals(v)
    elif t is list:
        for i, v in enumerate(value):
            tv = type(v)
            if tv is Decimal or tv is dict or tv is list:
                value[i] = floats_for_decimals(v)
    return value


class TrackedReader:
    """A binary file object for ijson that drops a leading BOM, repairs invalid UTF-8 (counted once, as the
    whole-document path does) and remembers the bytes and lines it has handed out, to place parse errors."""

    def __init__(self, fh: IO[bytes], problems: Problems, path: Path) -> None:
        self._fh = fh
        self._problems = problems
        self._path = path
        self._first = fh.tell() == 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._replacing = False
        self.offset = 0  # bytes handed out before the current chunk
        self.lines = 0  # newlines handed out before the current chunk
        self.chunk = b""
        self.tail = b""  # the last byte handed out
        self.eof = False

    def read(self, n: int = CHUNK) -> bytes:
        data = self._fh.read(n)
        if self._first:
            self._first = False
            data = data.removeprefix(BOM)
        final = not data
        if final and self.eof:
            return b""
        if self._replacing or not data.isascii() or final:
            data = self._checked(data, final)
        if data:
            self.tail = data[-1:]
        self.offset += len(self.chunk)
        self.lines += self.chunk.count(b"\n")
        self.chunk = data
        self.eof = final
        return data

    def _checked(self, data: bytes, final: bool) -> bytes:
        if self._replacing:
            return self._decoder.decode(data, final).encode("utf-8", "surrogatepass")
        state = self._decoder.getstate()
        try:
            self._decoder.decode(data, final)
            return data
        except UnicodeDecodeError as exc:
            pos = self.offset + len(self.chunk) + exc.start - len(state[0])
            span = f"byte 0x{exc.object[exc.start]:02x} in position {pos}" if exc.end - exc.start == 1 else (
                f"bytes in position {pos}-{pos + exc.end - exc.start - 1}"
            )
            self._problems.repair("invalid_utf8", f"{self._path}:1", f"'utf-8' codec can't decode {span}: {exc.reason}"[:120])
            self._replacing = True
            self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
            self._decoder.setstate(state)
            return self._decoder.decode(data, final).encode("utf-8", "surrogatepass")

    def line_of_error(self, message: str) -> int:
        """1-based line of a yajl error: the snippet yajl prints (error byte at column 40) located in the
        chunk it was parsing; premature EOF is the file's last line; the chunk's first line when unsure."""
        if self.eof or "premature EOF" in message:
            total = self.lines + self.chunk.count(b"\n")
            return total if self.tail == b"\n" else total + 1
        m = _SNIPPET.search(message)
        if m and len(m.group("line")) > 40:
            text = m.group("line")
            before = text[: 40].lstrip(" ")[-30:]
            after = text[40:]
            pattern = re.escape(before + after).replace(r"\ ", "[ \r\n]").encode("utf-8", "replace")
            hits = [h.start() + len(before.encode("utf-8", "replace")) for h in re.finditer(pattern, self.chunk)]
            if len(hits) == 1:
                return self.lines + self.chunk.count(b"\n", 0, hits[0]) + 1
        return self.lines + 1


class NumberOverflow(Exception):
    """A number the fast float mode cannot hold (an int beyond 64 bits, 1e400): re-read in exact mode."""


class JsonEvents:
    """ijson parse events of one file (several top-level values allowed), whole values built by the backend's
    item builder (C with ``yajl2_c``), and the first parse error kept instead of raised."""

    def __init__(self, path: Path, problems: Problems, *, exact: bool = False, start: tuple[int, int] = (0, 1)) -> None:
        self.path = path
        self.exact = exact
        self._fh = open_binary(path)
        offset, line = start  # where to begin: a byte offset (decompressed) and its line
        if offset:
            self._fh.seek(offset)
        self.reader = TrackedReader(self._fh, problems, path)
        self.reader.lines = line - 1
        self.reader.offset = offset
        self._events = ijson.parse(self.reader, multiple_values=True, use_float=not exact, buf_size=CHUNK)
        self.error: tuple[str, str] | None = None  # (file:line, message) of the parse error that ended the stream

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, exc: Exception) -> None:
        message = exc.args[0] if exc.args else type(exc).__name__
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        message = str(message)
        if not self.exact and any(o in message for o in _OVERFLOW):
            raise NumberOverflow(message) from exc
        self.error = (f"{self.path}:{self.reader.line_of_error(message)}", message.split("\n", 1)[0][:160])

    def next(self) -> Event | None:
        """The next event, or ``None`` at the end of the data (or at the first parse error)."""
        if self.error is not None:
            return None
        try:
            return next(self._events)  # type: ignore[no-any-return]
        except StopIteration:
            return None
        except (ijson.JSONError, ValueError) as exc:
            self._fail(exc)
            return None

    def first(self) -> Event | None:
        """The document's first event; ``None`` when there is none, with ``error`` set (an empty file is
        "no JSON value" at line 1)."""
        event = self.next()
        if event is None and self.error is None:
            self.error = (f"{self.path}:1", "no JSON value")
        return event

    def build(self, event: Event) -> Any:
        """The whole value that ``event`` starts (a scalar is its own value); ``None`` with ``error`` set when
        the data breaks inside it."""
        prefix, kind, value = event
        if kind not in ("start_map", "start_array"):
            return float(value) if type(value) is Decimal else value
        source = itertools.chain([event], self._events)
        try:
            built = next(ijson.items(source, prefix, use_float=not self.exact))
        except StopIteration:  # the data ended inside the value
            self.error = self.error or (f"{self.path}:{self.reader.line_of_error('premature EOF')}", "premature end of data")
            return None
        except (ijson.JSONError, ValueError) as exc:
            self._fail(exc)
            return None
        return floats_for_decimals(built) if self.exact else built

    def skip(self, event: Event) -> None:
        """Consume the value ``event`` starts without keeping it."""
        self.build(event)

    def items(self, start: Event) -> Iterator[Any]:
        """Each item of the array ``start`` opens, built one at a time; stops at the array's end or an error."""
        end_prefix = start[0]
        while True:
            ev = self.next()
            if ev is None:
                return
            if ev[1] == "end_array" and ev[0] == end_prefix:
                return
            item = self.build(ev)
            if self.error is not None:
                return
            yield item

    def map_entries(self, start: Event) -> Iterator[tuple[str, Event]]:
        """``(key, first event of its value)`` of the object ``start`` opens; the caller consumes each value
        (``build``, ``skip``, ``items``) before asking for the next key."""
        end_prefix = start[0]
        while True:
            ev = self.next()
            if ev is None or (ev[1] == "end_map" and ev[0] == end_prefix):
                return
            key = ev[2]
            val = self.next()
            if val is None:
                return
            yield key, val


def array_items(events: JsonEvents, start: Event) -> Iterator[Event]:
    """The first event of each item of the array ``start`` opens; the caller consumes each item."""
    while True:
        ev = events.next()
        if ev is None or (ev[1] == "end_array" and ev[0] == start[0]):
            return
        yield ev


def labelled(items: Iterator[Any], where: str, key: str) -> Iterator[tuple[Any, str]]:
    """``(item, location)``: ``where`` alone when the list holds one item, else ``where#key[i]`` (as
    ``common.convert_records`` names them); one item of look-ahead, so memory stays one item."""
    held: Any = None
    n = 0
    for item in items:
        if n:
            yield held, f"{where}#{key}[{n - 1}]"
        held, n = item, n + 1
    if n:
        yield held, where if n == 1 else f"{where}#{key}[{n - 1}]"


def with_exact_retry(
    path: Path, problems: Problems, walk: Callable[[JsonEvents], Iterator[Any]], start: tuple[int, int] = (0, 1)
) -> Iterator[Any]:
    """Run ``walk`` over the fast (float) parser; if a number overflows it, run it again in exact mode
    (ints of any size, as the stdlib gives) and skip what was already yielded. Ends with the parse error,
    if any, counted as ``malformed_json``."""
    done = 0
    events = JsonEvents(path, problems, start=start)
    try:
        with events:
            for rec in walk(events):
                yield rec
                done += 1
    except NumberOverflow:
        events = JsonEvents(path, Problems(), exact=True, start=start)  # invalid UTF-8 was already counted once
        with events:
            for rec in itertools.islice(walk(events), done, None):
                yield rec
    if events.error is not None:
        problems.skip("malformed_json", *events.error)


def build_document(path: Path, problems: Problems) -> tuple[bool, Any]:
    """``(ok, value)``: the single JSON value a file holds, built incrementally (the raw bytes are never held
    whole); trailing data or a parse error is counted as ``malformed_json`` and gives ``(False, None)``."""
    out: list[Any] = []

    def walk(ev: JsonEvents) -> Iterator[Any]:
        out.clear()
        first = ev.first()
        if first is not None:
            value = ev.build(first)
            if ev.error is None and ev.next() is None and ev.error is None:
                out.append(value)
            elif ev.error is None:
                ev.error = (f"{path}:{ev.reader.lines + 1}", "trailing data after the document")
        yield from ()

    for _ in with_exact_retry(path, problems, walk):
        pass
    return (True, out[0]) if out else (False, None)


def preview(path: Path, budget: int = 256 * 1024) -> Any:
    """The first JSON value of a file as far as its first ``budget`` bytes go (open containers closed):
    enough to name a format without reading a whole document."""
    builder = ijson.ObjectBuilder()
    seen_value = False
    with open_binary(path) as fh:
        reader = _Limited(fh, budget)
        try:
            for _prefix, event, value in ijson.parse(reader, multiple_values=True, buf_size=65536):
                builder.event(event, value)
                seen_value = True
                if not builder.containers:
                    break  # the first value is complete
        except (ijson.JSONError, ValueError, OSError, EOFError):
            pass
    if not seen_value:
        raise ValueError("no JSON value in the first bytes")
    return floats_for_decimals(builder.value)


class _Limited:
    """At most ``budget`` bytes of a file, a leading BOM dropped."""

    def __init__(self, fh: IO[bytes], budget: int) -> None:
        self._fh = fh
        self._left = budget
        self._first = True

    def read(self, n: int) -> bytes:
        if self._left <= 0:
            return b""
        data = self._fh.read(min(n, self._left))
        self._left -= len(data)
        if self._first:
            self._first = False
            data = data.removeprefix(BOM)
        return data


LINE_LIMIT = STREAM_ABOVE  # a JSONL line longer than this is walked incrementally instead


def is_jsonl(path: Path) -> bool:
    """True when the first two non-blank lines are each a whole JSON value (one document per line)."""
    seen = 0
    with open_binary(path) as fh:
        while seen < 2:
            raw = fh.readline(LINE_LIMIT)
            if not raw:
                return seen > 0
            if len(raw) == LINE_LIMIT and not raw.endswith(b"\n"):
                return False
            raw = raw.strip().removeprefix(BOM)
            if not raw:
                continue
            try:
                json.loads(raw.decode("utf-8", "replace"))
            except (ValueError, RecursionError):
                return False
            seen += 1
    return True


def jsonl_values(path: Path, problems: Problems) -> Iterator[tuple[str, Any, Any]]:
    """``("value", file:line, value)`` per JSON value of a one-document-per-line file, each line parsed by the
    stdlib decoder exactly as the whole-document path parses it (same values, same lines, same problems),
    holding one line at a time; ``("rest", (byte offset, line), None)`` when a line is too long to hold,
    for the caller to walk the rest of the file incrementally."""
    replacing = False
    with open_binary(path) as fh:
        lineno, shift = 0, 0  # shift: a leading BOM, which positions in the whole-document path do not count
        while True:
            pos = fh.tell()
            raw = fh.readline(LINE_LIMIT)
            if not raw:
                return
            lineno += 1
            if len(raw) == LINE_LIMIT and not raw.endswith(b"\n"):
                yield "rest", (pos, lineno), None
                return
            if pos == 0 and raw.startswith(BOM):
                raw, shift = raw[len(BOM) :], len(BOM)
            base = max(0, pos - shift)
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8", "replace" if replacing else "strict")
            except UnicodeDecodeError as exc:
                at = base + exc.start
                span = f"byte 0x{raw[exc.start]:02x} in position {at}" if exc.end - exc.start == 1 else (
                    f"bytes in position {at}-{base + exc.end - 1}"
                )
                problems.repair("invalid_utf8", f"{path}:1", f"'utf-8' codec can't decode {span}: {exc.reason}"[:120])
                replacing = True
                text = raw.decode("utf-8", "replace")
            for _line, value, err in iter_json_values(text):
                if value is None:
                    problems.skip("malformed_json", f"{path}:{lineno}", err)
                else:
                    yield "value", f"{path}:{lineno}", value
