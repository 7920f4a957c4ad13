"""OTLP/JSON (the collector's file exporter; protobuf's JSON mapping) → canonical spans.

One ``TracesData`` / ``ExportTraceServiceRequest`` per line, or a single (pretty) document,
or a list of them. ``resourceSpans[].scopeSpans[].spans[]`` (also the legacy
``instrumentationLibrarySpans`` and snake_case field names); ids hex (OTLP/JSON spec) or
base64 (protobuf ``json_format``); int64 as strings; typed ``AnyValue`` attributes; enum
ints or names for kind and status. Exception events are folded into attributes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.traces import conventions as C
from engine.traces.formats.common import (
    dict_at,
    exception_attrs,
    flatten_into,
    is_primitive,
    iter_documents,
    to_text,
)
from engine.traces.problems import Problems
from engine.traces.span import (
    Span,
    make_span,
    normalize_kind,
    normalize_status_code,
    span_id_hex,
    to_ns,
    trace_id_hex,
)

FORMAT = "otlp_json"


def _g(obj: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    v = obj.get(camel)
    return obj.get(snake, default) if v is None else v


def any_value(v: Any) -> Any:
    """Decode an OTLP ``AnyValue`` (``{"stringValue": ...}`` etc.) to a plain JSON value."""
    if not isinstance(v, dict):
        return v
    for camel, snake in (("stringValue", "string_value"), ("boolValue", "bool_value")):
        if camel in v or snake in v:
            return _g(v, camel, snake)
    if "intValue" in v or "int_value" in v:
        raw = _g(v, "intValue", "int_value")
        try:
            return int(raw)
        except (TypeError, ValueError):
            return raw
    if "doubleValue" in v or "double_value" in v:
        raw = _g(v, "doubleValue", "double_value")
        try:
            return float(raw)  # "NaN"/"Infinity" strings stay floats
        except (TypeError, ValueError):
            return raw
    if "arrayValue" in v or "array_value" in v:
        arr = _g(v, "arrayValue", "array_value") or {}
        return [any_value(x) for x in (arr.get("values") or [])]
    if "kvlistValue" in v or "kvlist_value" in v:
        kv = _g(v, "kvlistValue", "kvlist_value") or {}
        return {str(e.get("key")): any_value(e.get("value")) for e in (kv.get("values") or []) if isinstance(e, dict)}
    if "bytesValue" in v or "bytes_value" in v:
        raw = _g(v, "bytesValue", "bytes_value")
        try:
            return base64.b64decode(raw).hex()
        except (TypeError, ValueError):
            return raw
    return None  # empty AnyValue


def key_values(items: Any) -> dict[str, Any]:
    """``[{"key": k, "value": AnyValue}]`` → flat attribute dict (maps flattened to dotted keys)."""
    out: dict[str, Any] = {}
    if not isinstance(items, list):
        return out
    for kv in items:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            continue
        val = any_value(kv.get("value"))
        if isinstance(val, dict):
            flatten_into(out, kv["key"], val)
        elif isinstance(val, list) and not all(is_primitive(x) for x in val):
            out[kv["key"]] = to_text(val)
        elif val is not None:
            out[kv["key"]] = val
    return out


def _events_as_dicts(events: Any) -> list[dict[str, Any]]:
    out = []
    for ev in events or []:
        if isinstance(ev, dict):
            out.append({"name": ev.get("name"), "attributes": key_values(ev.get("attributes"))})
    return out


def convert_span(
    obj: Any, resource: dict[str, Any], scope: dict[str, Any], problems: Problems, where: str
) -> Span | None:
    """One OTLP span object → canonical span (or None, counted)."""
    if not isinstance(obj, dict):
        problems.skip("not_an_object", where)
        return None
    tid = trace_id_hex(_g(obj, "traceId", "trace_id"))
    sid = span_id_hex(_g(obj, "spanId", "span_id"))
    if not tid:
        problems.skip("missing_trace_id", where)
        return None
    if not sid:
        problems.skip("missing_span_id", where)
        return None
    start = to_ns(_g(obj, "startTimeUnixNano", "start_time_unix_nano"))
    if start is None:
        problems.skip("bad_timestamp", where)
        return None
    attrs = key_values(obj.get("attributes"))
    end = to_ns(_g(obj, "endTimeUnixNano", "end_time_unix_nano"))
    if end is None or end < start:
        reason = "missing_end_time" if end is None else "end_before_start"
        problems.repair(reason, where)
        attrs[C.REPAIRED] = reason
        end = start
    for k, v in exception_attrs(_events_as_dicts(obj.get("events"))).items():
        attrs.setdefault(k, v)
    status = dict_at(obj, "status")
    code = normalize_status_code(status.get("code"))
    msg = status.get("message") or ""
    if code == "STATUS_CODE_ERROR" and not msg and isinstance(attrs.get("exception.message"), str):
        msg = attrs["exception.message"]
    attrs[C.SOURCE_FORMAT] = FORMAT
    name = obj.get("name")
    ts = _g(obj, "traceState", "trace_state")
    return make_span(
        trace_id=tid,
        span_id=sid,
        parent_span_id=span_id_hex(_g(obj, "parentSpanId", "parent_span_id")),
        name=name if isinstance(name, str) else "",
        kind=normalize_kind(obj.get("kind")),
        start_ns=start,
        end_ns=end,
        status_code=code,
        status_message=msg if isinstance(msg, str) else str(msg),
        attributes=attrs,
        resource_attributes=resource,
        scope_name=scope.get("name") or "",
        scope_version=scope.get("version") or "",
        trace_state=ts if isinstance(ts, str) else "",
    )


def spans_of(doc: Any, problems: Problems, where: str) -> Iterator[Span]:
    """Spans of one ``TracesData`` value (or a list of them)."""
    if isinstance(doc, list):
        for d in doc:
            yield from spans_of(d, problems, where)
        return
    if not isinstance(doc, dict):
        problems.skip("not_an_object", where)
        return
    rss = _g(doc, "resourceSpans", "resource_spans")
    if not isinstance(rss, list):
        problems.skip("not_traces_data", where)
        return
    for rs in rss:
        if not isinstance(rs, dict):
            problems.skip("not_an_object", where)
            continue
        res = dict_at(rs, "resource")
        rattrs = key_values(res.get("attributes"))
        sss = _g(rs, "scopeSpans", "scope_spans") or _g(rs, "instrumentationLibrarySpans", "instrumentation_library_spans") or []
        for ss in sss if isinstance(sss, list) else []:
            if not isinstance(ss, dict):
                continue
            scope = _g(ss, "scope", "scope") or _g(ss, "instrumentationLibrary", "instrumentation_library") or {}
            scope = scope if isinstance(scope, dict) else {}
            for i, sp in enumerate(ss.get("spans") or []):
                span = convert_span(sp, dict(rattrs), scope, problems, f"{where}#span[{i}]")
                if span is not None:
                    yield span


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield every span of an OTLP/JSON file."""
    for where, value in iter_documents(path, problems):
        yield from spans_of(value, problems, where)
