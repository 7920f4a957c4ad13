"""Arize Phoenix span exports → canonical spans.

Shape (Phoenix REST ``GET /v1/projects/{id}/spans``, ``Span`` model in
``phoenix/server/api/routers/v1/spans.py``): ``{"data": [{"id" (global id), "name",
"context": {"trace_id", "span_id"}, "span_kind", "parent_id", "start_time", "end_time",
"status_code" (OK|ERROR|UNSET), "status_message", "attributes" (flattened), "events":
[{name, timestamp, attributes}]}], "next_cursor"}``. Phoenix pops
``openinference.span.kind`` out of the attributes into ``span_kind``; it is put back.
The ``/spans/otlpv1`` variant (OTLP-style spans with snake_case fields) is accepted too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.traces import conventions
from engine.traces.formats import otlp_json
from engine.traces.formats.common import (
    convert_records,
    dict_at,
    exception_attrs,
    flatten_into,
    iter_documents,
)
from engine.traces.problems import Problems
from engine.traces.span import (
    Span,
    make_span,
    normalize_status_code,
    span_id_hex,
    to_ns,
    trace_id_hex,
)

FORMAT = "phoenix"


def convert_span(obj: Any, problems: Problems, where: str) -> Span | None:
    """One Phoenix REST span → canonical span (or None, counted)."""
    if not isinstance(obj, dict):
        problems.skip("not_an_object", where)
        return None
    if "start_time_unix_nano" in obj or "startTimeUnixNano" in obj:  # the /otlpv1 endpoint
        span = otlp_json.convert_span(obj, {}, {}, problems, where)
        if span is not None:
            span["attributes"][conventions.SOURCE_FORMAT] = FORMAT
        return span
    ctx = dict_at(obj, "context")
    tid = trace_id_hex(ctx.get("trace_id"))
    sid = span_id_hex(ctx.get("span_id"))
    if not tid:
        problems.skip("missing_trace_id", where)
        return None
    if not sid:
        problems.skip("missing_span_id", where)
        return None
    start = to_ns(obj.get("start_time"))
    if start is None:
        problems.skip("bad_timestamp", where, f"start_time={obj.get('start_time')!r}"[:100])
        return None
    attrs: dict[str, Any] = {}
    raw_attrs = obj.get("attributes")
    if isinstance(raw_attrs, dict):
        for k, v in raw_attrs.items():
            flatten_into(attrs, str(k), v)  # already flat in practice; nested maps flattened if not
    kind = obj.get("span_kind")
    if isinstance(kind, str) and kind and kind.upper() != "UNKNOWN":
        attrs.setdefault("openinference.span.kind", kind.upper())
    end = to_ns(obj.get("end_time"))
    if end is None or end < start:
        reason = "missing_end_time" if end is None else "end_before_start"
        problems.repair(reason, where)
        attrs[conventions.REPAIRED] = reason
        end = start
    for k, v in exception_attrs(obj.get("events")).items():
        attrs.setdefault(k, v)
    if isinstance(obj.get("id"), str) and obj["id"]:
        attrs["phoenix.span.global_id"] = obj["id"]
    code = normalize_status_code(obj.get("status_code"))
    msg = obj.get("status_message")
    if code == "STATUS_CODE_ERROR" and not msg and isinstance(attrs.get("exception.message"), str):
        msg = attrs["exception.message"]
    attrs[conventions.SOURCE_FORMAT] = FORMAT
    name = obj.get("name")
    return make_span(
        trace_id=tid,
        span_id=sid,
        parent_span_id=span_id_hex(obj.get("parent_id")),
        name=name if isinstance(name, str) else "",
        start_ns=start,
        end_ns=end,
        status_code=code,
        status_message=msg if isinstance(msg, str) else "",
        attributes=attrs,
    )


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield the spans of a Phoenix spans export (one response, a list, or JSONL of spans/responses)."""
    for where, value in iter_documents(path, problems):
        yield from convert_records(value, ("data",), where, convert_span, problems)
