"""The one sink every capture path writes through: stamps test linkage, caps values, writes.

Spans of a running test are held in memory until the test's outcome is known (the end of
its protocol, in the process that ran it), then written already stamped with
``halo.test.outcome``. So the part file is final as written and the controller's merge is
a concatenation, not a JSON round trip per span. Spans of a test that already finished
(background threads) are stamped and written at once; spans outside any test are written
at once without an outcome. A crashed process loses only its in-flight test's spans.

OTel SDK spans of the running test are held unserialised (the ended ``ReadableSpan``) and
rendered in one batch at the test's end (``otel_render``); past ``HOLD_LIMIT`` held spans
(SDK or already serialised) a test's spans are rendered early with an outcome placeholder,
kept in memory up to ``EARLY_MEMORY`` bytes and beyond that in an anonymous spill file, so a
test emitting hundreds of thousands of spans costs a bounded amount of memory.

A write error (full disk, file-size limit, unwritable directory) never raises into the
run: the writer keeps the first error, the recorder writes no index for a torn part (the
merge then scans it), and the session reports it in one line (``error``).

Next to each part file the recorder writes ``<part>.index.json``: per test, its trace ids
and span count (tests.jsonl needs them; the merge need not scan the spans).

A process has at most one active recorder (``current()``), so the manual API and the SDK
processors find it without plumbing.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from engine.traces import conventions
from pytest_halo.capture.test_context import TestContext
from pytest_halo.capture.writer import (
    JsonlWriter,
    capped_body,
    dumps_compact,
    dumps_line,
    value_limit_from_env,
)

# Held spans of one test before they are rendered early (with an outcome placeholder). A held
# span is a ``freeze``d tuple keeping 2 GC-tracked objects alive, so 256 of them stay under
# the gen-0 threshold (700 net allocations): holding costs no extra collections.
HOLD_LIMIT = 256
EARLY_MEMORY = 4 << 20  # bytes of early-rendered lines kept in memory before they go to the spill file
SPILL_CHUNK = 1 << 20  # bytes read back from the spill file per write at the test's end
# (held spans, suffix of a linkage, write, out trace ids) → lines written: ``SpanRenderer.render``.
Renderer = Callable[[list[tuple[Any, ...]], Callable[[Any], bytes], Callable[[bytes], Any], dict[str, None]], int]
# (ended span, its linkage) → the held item ``Renderer`` reads: ``otel_render.held_fields``.
Freezer = Callable[[Any, Any], tuple[Any, ...]]
_OUTCOME_KEY = b',"' + conventions.TEST_OUTCOME.encode() + b'":'
# Stands for the outcome in lines rendered before it is known: a raw NUL never occurs in
# JSON text, so one ``bytes.replace`` at the test's end stamps (or drops) them all.
_LATER = _OUTCOME_KEY + b"\x00"


def stamp_outcome(line: bytes, outcome: str) -> bytes:
    """Add ``halo.test.outcome`` to a serialised span whose last key is its (non-empty) attributes.

    Held spans are kept as bytes, not dicts: bytes are invisible to the cyclic GC, so
    holding a test's spans costs no collection time.
    """
    return line[:-3] + _OUTCOME_KEY + orjson.dumps(outcome) + b"}}\n"


def _stamp(line: bytes, outcome: str | bytes) -> bytes:
    """``stamp_outcome``, or the outcome placeholder when ``outcome`` is ``_LATER``."""
    return line[:-3] + outcome + b"}}\n" if isinstance(outcome, bytes) else stamp_outcome(line, outcome)


_CURRENT: Recorder | None = None


def current() -> Recorder | None:
    """The active recorder, or None when halo is not capturing in this process."""
    return _CURRENT


def index_path(part: Path) -> Path:
    return part.with_name(part.name + ".index.json")


class EarlyLines:
    """A long test's lines rendered before its outcome is known: in memory, then in a spill file.

    The spill file is anonymous (``TemporaryFile``) in the part's directory, so a killed
    process leaves nothing behind and the bytes never sit in this process's memory.
    """

    __slots__ = ("buf", "spill", "spill_dir")

    def __init__(self, spill_dir: Path) -> None:
        self.buf = bytearray()
        self.spill: Any = None
        self.spill_dir = spill_dir

    def maybe_spill(self) -> None:
        """Move the in-memory lines to the spill file once they pass ``EARLY_MEMORY`` (may raise OSError)."""
        if len(self.buf) < EARLY_MEMORY:
            return
        if self.spill is None:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            self.spill = tempfile.TemporaryFile(dir=self.spill_dir)  # noqa: SIM115 - closed in drain
        self.spill.write(self.buf)
        self.buf = bytearray()

    def drain(self, stamp: bytes, write: Callable[[bytes | bytearray, int], Any]) -> None:
        """``write(lines, count)`` every line with the outcome placeholder replaced by ``stamp``."""
        spill, self.spill = self.spill, None
        if spill is not None:
            with spill:
                spill.seek(0)
                carry = b""
                while True:
                    chunk = spill.read(SPILL_CHUNK)
                    if not chunk:
                        break
                    chunk = carry + chunk
                    cut = chunk.rfind(b"\n") + 1
                    piece, carry = chunk[:cut], chunk[cut:]
                    if piece:
                        write(piece.replace(_LATER, stamp), piece.count(b"\n"))
        if self.buf:
            buf, self.buf = self.buf, bytearray()
            write(buf.replace(_LATER, stamp), buf.count(b"\n"))

    def discard(self) -> int:
        """Drop everything (after a write error); the number of lines dropped from memory."""
        lines = self.buf.count(b"\n")
        self.buf = bytearray()
        if self.spill is not None:
            try:
                self.spill.close()
            except OSError:
                pass
            self.spill = None
        return lines


class Recorder:
    """Writes canonical span dicts to this process's part file, tagged with test, run and outcome."""

    def __init__(self, path: Path, run_id: str, worker: str, value_limit: int | None = None) -> None:
        self.writer = JsonlWriter(path)
        self.context = TestContext()
        self.run_id = run_id
        self.worker = worker
        self.value_limit = value_limit or value_limit_from_env()
        self._lock = threading.Lock()
        # nodeid -> held items, in end order: (trace id, serialised line) or a ``freeze``d span
        # (a longer tuple ending with its linkage)
        self._pending: dict[str, list[tuple[Any, ...]]] = {}
        # nodeid -> lines rendered early (indexed, outcome placeholder)
        self._early: dict[str, EarlyLines] = {}
        self.index_error: OSError | None = None
        self.renderer: Renderer | None = None  # set by the OTel processor, with ``freeze``
        self.freeze: Freezer | None = None
        self._outcomes: dict[str, str] = {}
        self._index: dict[str, dict[str, Any]] = {}  # nodeid -> {"trace_ids": {tid: None}, "spans": n}
        self._traces: set[str] = set()
        self._suffixes: dict[tuple[str, str] | None, bytes] = {}

    @property
    def error(self) -> OSError | None:
        """The first write error of this process's capture (None when everything was written)."""
        return self.writer.error or self.index_error

    def activate(self) -> None:
        global _CURRENT
        _CURRENT = self

    def deactivate(self) -> None:
        global _CURRENT
        if _CURRENT is self:
            _CURRENT = None

    def span_started(self, trace_key: Any) -> None:
        """A span of trace ``trace_key`` started (any hashable key, used consistently per source)."""
        self.context.claim(trace_key)

    def _indexed(self, nodeid: str | None, trace_id: str) -> None:
        self._traces.add(trace_id)
        if nodeid is None:
            return
        entry = self._index.get(nodeid)
        if entry is None:
            entry = self._index[nodeid] = {"trace_ids": {}, "spans": 0}
        entry["trace_ids"][trace_id] = None
        entry["spans"] += 1

    def suffix(self, linked: tuple[str, str] | None) -> bytes:
        """Our attributes and the closing braces, serialised once per (nodeid, phase)."""
        got = self._suffixes.get(linked)
        if got is None:
            extra = {conventions.TEST_WORKER: self.worker, conventions.RUN_ID: self.run_id}
            if linked is not None:
                extra[conventions.TEST_PHASE] = linked[1]
                extra[conventions.TEST_NODEID] = linked[0]
            got = orjson.dumps(extra)[1:] + b"}\n"
            if len(self._suffixes) > 100_000:
                self._suffixes.clear()
            self._suffixes[linked] = got
        return got

    def emit(self, span: dict[str, Any], trace_key: Any = None) -> None:
        """Tag, cap and write (or hold until its test ends) one canonical span dict."""
        head = {k: v for k, v in span.items() if k != "attributes"}
        prefix = dumps_line(head)[:-2] + b',"attributes":'
        self.emit_serialized(span["trace_id"] if trace_key is None else trace_key, span["trace_id"], prefix,
                             span.get("attributes") or {})

    def emit_serialized(self, trace_key: Any, trace_id: str, prefix: bytes, attrs: dict[str, Any]) -> None:
        """``prefix`` is the span's JSON up to ``"attributes":``; we add attributes + ours.

        ``attrs`` is not modified (copied only when a value must be capped).
        """
        linked = self.context.attribution(trace_key)
        body = dumps_compact(attrs)  # b"{...}"
        if len(body) > self.value_limit:  # only then can a single value be over the cap
            body = capped_body(attrs, body, self.value_limit)
        self.emit_line(linked, trace_id, prefix + (body[:-1] + b"," if len(body) > 2 else b"{") + self.suffix(linked))

    def emit_line(self, linked: tuple[str, str] | None, trace_id: str, line: bytes) -> None:
        """Write (or hold until its test ends) a serialised span ending with ``suffix(linked)``."""
        if linked is None:
            with self._lock:
                self._indexed(None, trace_id)
            self.writer.write_raw(line, 1)
            return
        nodeid = linked[0]
        with self._lock:
            outcome = self._outcomes.get(nodeid)
            if outcome is None:
                held = self._pending.get(nodeid)
                if held is None:
                    held = self._pending[nodeid] = []
                held.append((trace_id, line))
                if len(held) >= HOLD_LIMIT:
                    self._render_early(nodeid, held)
                return
            self._indexed(nodeid, trace_id)
        self.writer.write_raw(stamp_outcome(line, outcome), 1)

    def hold(self, trace_key: Any, span: Any) -> bool:
        """Hold an ended span of the running test for ``renderer`` (the OTel hot path).

        Only when its trace is claimed by the running test and that test's outcome is not
        known yet; otherwise returns False and the caller emits the span now.
        """
        cur = self.context.current
        freeze = self.freeze
        if cur is None or freeze is None:
            return False
        got = self.context.claims.get(trace_key)
        if got is None or got[0] is not cur[0]:
            return False
        nodeid = cur[0]
        with self._lock:
            if nodeid in self._outcomes:
                return False
            held = self._pending.get(nodeid)
            if held is None:
                held = self._pending[nodeid] = []
            held.append(freeze(span, cur))
            if len(held) >= HOLD_LIMIT:
                self._render_early(nodeid, held)
        return True

    def _render_early(self, nodeid: str, items: list[tuple[Any, ...]]) -> None:
        """A long test's held items → lines with an outcome placeholder, indexed now (lock held)."""
        early = self._early.get(nodeid)
        if early is None:
            self._early[nodeid] = early = EarlyLines(self.writer.path.parent)
        trace_ids, count = self._render(items, _LATER, early.buf.extend)
        self._index_many(nodeid, trace_ids, count)
        self._pending[nodeid] = []
        try:
            early.maybe_spill()
        except OSError as exc:  # no room for the spill file: these lines are lost, the run goes on
            self.writer.fail(exc, early.discard())

    def _closing(self, linked: tuple[str, str] | None, outcome: str | bytes | None) -> bytes:
        """The serialised test linkage (and outcome, or its placeholder) that ends a span's line."""
        suffix = self.suffix(linked)
        return _stamp(suffix, outcome) if outcome else suffix

    def _render(self, items: list[tuple[Any, ...]], outcome: str | bytes | None,
                write: Callable[[bytes], Any]) -> tuple[dict[str, None], int]:
        """``write`` held items' lines stamped with ``outcome``; (trace ids in first-seen order, line count)."""
        trace_ids: dict[str, None] = {}
        spans: list[tuple[Any, ...]] = []
        count = 0

        def closing(linked: Any) -> bytes:
            return self._closing(linked, outcome)

        render = self.renderer
        for item in items:
            if len(item) != 2:  # a frozen span
                spans.append(item)
                continue
            line = item[1]
            if spans and render is not None:
                count += render(spans, closing, write, trace_ids)
                spans = []
            write(_stamp(line, outcome) if outcome else line)
            trace_ids[item[0]] = None
            count += 1
        if spans and render is not None:
            count += render(spans, closing, write, trace_ids)
        return trace_ids, count

    def _index_many(self, nodeid: str, trace_ids: dict[str, None], spans: int) -> None:
        """Index ``spans`` lines of ``nodeid`` with these trace ids (lock held)."""
        self._traces.update(trace_ids)
        if not spans and not trace_ids:
            return
        entry = self._index.get(nodeid)
        if entry is None:
            entry = self._index[nodeid] = {"trace_ids": {}, "spans": 0}
        entry["trace_ids"].update(trace_ids)
        entry["spans"] += spans

    def test_finished(self, nodeid: str, outcome: str | None) -> None:
        """The test's protocol is over: render/stamp its held spans with ``outcome`` and write them."""
        with self._lock:
            if outcome:
                self._outcomes[nodeid] = outcome
            items = self._pending.pop(nodeid, None)
            early = self._early.pop(nodeid, None)
        if early is not None:
            stamp = _OUTCOME_KEY + orjson.dumps(outcome) if outcome else b""
            try:
                early.drain(stamp, self.writer.write_raw)
            except OSError as exc:
                self.writer.fail(exc, early.discard())
        if items:
            done: list[tuple[dict[str, None], int]] = []

            def fill(write: Callable[[bytes], Any]) -> int:
                done.append(self._render(items, outcome, write))
                return done[0][1]

            self.writer.write_many(fill)
            if done:
                with self._lock:
                    self._index_many(nodeid, *done[0])
        self.flush()

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        """Write what is still held (tests that never finished: no outcome), the index, and close."""
        with self._lock:
            held = list(self._pending)
        for nodeid in held:
            self.test_finished(nodeid, None)
        self.flush()
        count = self.writer.count
        self.writer.close()
        # A part whose writer failed may be torn: no index, so the merge scans what is there.
        if self.writer.error is None and (count or self._index):
            payload = {"spans": count, "traces": sorted(self._traces), "tests": {k: {"trace_ids": list(v["trace_ids"]), "spans": v["spans"]}
                                                 for k, v in self._index.items()}}
            try:
                index_path(self.writer.path).write_bytes(orjson.dumps(payload))
            except OSError as exc:
                self.index_error = exc
                with contextlib.suppress(OSError):
                    index_path(self.writer.path).unlink(missing_ok=True)
        self.deactivate()
