"""One canonical JSONL line the general way: ``orjson.loads``, a shape check, ``canonicalize_record`` if needed.

This is the reference treatment of a line (what every span of a canonical file got before the
typed fast path existed); ``fast_scan`` hands it every line the projection cannot take, so
skipped / repaired records are tallied exactly as before.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from engine.traces.formats.canonical import canonicalize_record
from engine.traces.problems import Problems
from engine.traces.span import Span


def line_span(line: bytes, path: Path, lineno: int, problems: Problems) -> Span | None:
    """The span of one line, or None (malformed lines are tallied; blank lines are not)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if line.strip():
            problems.skip("malformed_json", f"{path}:{lineno}", str(exc))
        return None
    if (  # the shape the scanner indexes into without checks
        type(obj) is dict
        and type(obj.get("attributes")) is dict
        and type(obj.get("status")) is dict
        and type(obj.get("trace_id")) is str
        and type(obj.get("name")) is str
        and type(obj.get("start_time")) is str
        and type(obj.get("end_time")) is str
        and type(obj.get("span_id")) is str
    ):
        return obj
    span, reason, repairs = canonicalize_record(obj)
    if span is None:
        problems.skip(reason, f"{path}:{lineno}")
        return None
    for r in repairs:
        problems.repair(r, f"{path}:{lineno}")
    return span
