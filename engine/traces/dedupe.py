"""One span, counted once: the same (trace id, span id) read twice is skipped as ``duplicate_span``.

Spans are read twice when a file is passed twice, concatenated with itself, or when one
trace is split over files that overlap. Without this, every repeated span looks like a
repeated tool call and every count is inflated. The first occurrence wins (as in the index).

``SeenSpans`` keeps the span ids read per trace. Only the traces read most recently keep a
set of strings; an older trace's ids are packed into one string (8 bytes a span for the usual
16-hex-digit ids) and unpacked if the trace turns up again: at a million spans the sets cost
~140 MB, the packed ids ~8 MB. Files whose traces are not contiguous keep their sets (packing
stops once traces come back too often to be worth it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.traces.problems import Problems
from engine.traces.recent import Recent
from engine.traces.span import Span

DUPLICATE = "duplicate_span"
HOT_TRACES = 128  # traces whose ids stay unpacked: covers traces exported interleaved with their neighbours
ID_WIDTH = 16  # hex digits of an OTel span id


class SeenSpans:
    """Span ids read so far, per trace id; ``ids(trace_id)`` is the set to test and add to."""

    def __init__(self, hot: int | None = None) -> None:
        self._by_trace: dict[str, set[str] | str | bytes] = {}
        self._recent: Recent[str] = Recent(HOT_TRACES if hot is None else hot)
        self._last: tuple[str, set[str]] | None = None  # the trace asked for last (the dict path asks per span)

    def ids(self, trace_id: str) -> set[str]:
        """The trace's span ids (created or unpacked as needed); older traces' sets are packed meanwhile."""
        last = self._last
        if last is not None and last[0] == trace_id:
            return last[1]
        got = self._by_trace.get(trace_id)
        if got is None:
            got = self._by_trace[trace_id] = set()
        elif type(got) is not set:
            got = self._by_trace[trace_id] = _unpack(got)  # type: ignore[arg-type]
            self._recent.revived()
        old = self._recent.touch(trace_id)
        if old is not None:
            ids = self._by_trace[old]
            if type(ids) is set:
                self._by_trace[old] = _pack(ids)
        self._last = (trace_id, got)  # type: ignore[assignment]
        return got  # type: ignore[return-value]

    def __contains__(self, key: tuple[str, str]) -> bool:
        """``(trace id, span id) in seen`` without touching what is packed (for tests and checks)."""
        got = self._by_trace.get(key[0])
        if got is None:
            return False
        return key[1] in (got if type(got) is set else _unpack(got))  # type: ignore[arg-type]


def _pack(ids: set[str]) -> set[str] | str | bytes:
    """``ids`` as one string: bytes when every id is 16 lower-case hex digits, else the ids joined when
    they all have that width; anything else stays a set (exact either way: ids are cut back at 16)."""
    try:
        if {*map(len, ids)} != {ID_WIDTH}:
            return ids
        joined = "".join(ids)
    except TypeError:  # an id that is not a string (only the dict path could hand one over)
        return ids
    try:
        raw = bytes.fromhex(joined)
    except ValueError:
        return joined
    return raw if raw.hex() == joined else joined


def _unpack(packed: str | bytes) -> set[str]:
    text = packed.hex() if type(packed) is bytes else packed
    return {text[i : i + ID_WIDTH] for i in range(0, len(text), ID_WIDTH)}  # type: ignore[misc]


def is_duplicate(seen: SeenSpans, span: Span, path: Path | str, lineno: int | None, problems: Problems) -> bool:
    """Record ``span`` in ``seen``; True (and one ``duplicate_span`` tallied) when it was there already."""
    tid = span["trace_id"]
    sid = span["span_id"]
    ids = seen.ids(tid)
    if sid in ids:
        where = f"{path}:{lineno}" if lineno is not None else str(path)
        problems.skip(DUPLICATE, where, f"span {sid} of trace {tid} read again")
        return True
    ids.add(sid)
    return False


def unique_spans(spans: Iterable[Span], seen: SeenSpans, path: Path | str, problems: Problems) -> Iterator[Span]:
    """``spans`` without those already in ``seen`` (for readers that have no line numbers)."""
    for span in spans:
        if not is_duplicate(seen, span, path, None, problems):
            yield span
