"""One span, counted once: the same (trace id, span id) read twice is skipped as ``duplicate_span``.

Spans are read twice when a file is passed twice, concatenated with itself, or when one
trace is split over files that overlap. Without this, every repeated span looks like a
repeated tool call and every count is inflated. The first occurrence wins (as in the index).

``SeenSpans`` maps a trace id to the span ids already read in it: one small set per trace,
no per-span object beyond the span id string the reader already made.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.traces.problems import Problems
from engine.traces.span import Span

DUPLICATE = "duplicate_span"

SeenSpans = dict[str, set[str]]


def is_duplicate(seen: SeenSpans, span: Span, path: Path | str, lineno: int | None, problems: Problems) -> bool:
    """Record ``span`` in ``seen``; True (and one ``duplicate_span`` tallied) when it was there already."""
    tid = span["trace_id"]
    sid = span["span_id"]
    ids = seen.get(tid)
    if ids is None:
        seen[tid] = {sid}
        return False
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
