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

from engine.traces import conventions
from engine.traces.formats.common import (
    dict_at,
    exception_attrs,
    flatten_into,
    is_primitive,
    iter_documents,
    to_text,
)
from engine.traces.formats.stream import (
    Event,
    JsonEvents,
    array_items,
    is_jsonl,
    jsonl_values,
    should_stream,
    with_exact_retry,
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
    for ev in events if isinstance(events, list) else []:
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
        attrs[conventions.REPAIRED] = reason
        end = start
    for k, v in exception_attrs(_events_as_dicts(obj.get("events"))).items():
        attrs.setdefault(k, v)
    status = dict_at(obj, "status")
    code = normalize_status_code(status.get("code"))
    msg = status.get("message") or ""
    if code == "STATUS_CODE_ERROR" and not msg and isinstance(attrs.get("exception.message"), str):
        msg = attrs["exception.message"]
    attrs[conventions.SOURCE_FORMAT] = FORMAT
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
            for i, sp in enumerate(_span_list(ss.get("spans"))):
                span = convert_span(sp, dict(rattrs), scope, problems, f"{where}#span[{i}]")
                if span is not None:
                    yield span


SCOPE_LISTS = ("scopeSpans", "scope_spans", "instrumentationLibrarySpans", "instrumentation_library_spans")
SCOPE_KEYS = ("scope", "instrumentationLibrary", "instrumentation_library")


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield every span of an OTLP/JSON file (big documents are read incrementally, one span at a time)."""
    if should_stream(path):
        yield from _iter_streamed(path, problems)
        return
    for where, value in iter_documents(path, problems):
        yield from spans_of(value, problems, where)


# Streaming: the walk yields records, converted by the caller, so a re-read in exact number mode can skip
# exactly the records already converted. ("span", obj, resource attrs, scope, where) | ("value", obj, where)
# (a part of unexpected shape, built whole and converted as the whole-document path would) | ("skip", reason, where).


def _iter_streamed(path: Path, problems: Problems) -> Iterator[Span]:
    start = (0, 1)
    if is_jsonl(path):  # one document per line (the collector's file exporter): each line parsed as a whole
        for kind, where, value in jsonl_values(path, problems):
            if kind == "rest":
                start = where
                break
            yield from spans_of(value, problems, where)
        else:
            return
    for rec in with_exact_retry(path, problems, lambda ev: _walk(ev, path), start):
        if rec[0] == "span":
            span = convert_span(rec[1], dict(rec[2]), rec[3], problems, rec[4])
            if span is not None:
                yield span
        elif rec[0] == "value":
            yield from spans_of(rec[1], problems, rec[2])
        else:
            problems.skip(rec[1], rec[2])


def _walk(ev: JsonEvents, path: Path) -> Iterator[tuple[Any, ...]]:
    while (first := ev.next()) is not None:
        yield from _walk_value(ev, first, f"{path}:{ev.reader.lines + 1}")


def _walk_value(ev: JsonEvents, first: Event, where: str) -> Iterator[tuple[Any, ...]]:
    if first[1] == "start_array":  # a list of TracesData
        for item in array_items(ev, first):
            yield from _walk_value(ev, item, where)
    elif first[1] == "start_map":
        yield from _walk_traces_data(ev, first, where)
    else:
        yield ("skip", "not_an_object", where)


def _walk_traces_data(ev: JsonEvents, start: Event, where: str) -> Iterator[tuple[Any, ...]]:
    found = False
    for key, value in ev.map_entries(start):
        if key in ("resourceSpans", "resource_spans") and not found and value[1] == "start_array":
            found = True
            for rs in array_items(ev, value):
                if rs[1] == "start_map":
                    yield from _walk_resource_spans(ev, rs, where)
                else:
                    ev.skip(rs)
                    yield ("skip", "not_an_object", where)
        else:
            ev.skip(value)
    if not found and ev.error is None:
        yield ("skip", "not_traces_data", where)


def _walk_resource_spans(ev: JsonEvents, start: Event, where: str) -> Iterator[tuple[Any, ...]]:
    rattrs: dict[str, Any] | None = None
    pending: list[Any] = []  # scope lists met before the resource: built whole, converted at the end
    used = False  # like `scopeSpans or instrumentationLibrarySpans`: the first non-empty list wins
    for key, value in ev.map_entries(start):
        if key == "resource":
            res = ev.build(value)
            rattrs = key_values(res.get("attributes")) if isinstance(res, dict) else {}
        elif key in SCOPE_LISTS and not used and value[1] == "start_array":
            if rattrs is None:
                built = ev.build(value)
                if built:
                    pending, used = built, True
                continue
            for ss in array_items(ev, value):
                used = True
                yield from _walk_scope_spans(ev, ss, rattrs, where)
        else:
            ev.skip(value)
    for ss in pending:
        if isinstance(ss, dict):
            scope = _g(ss, "scope", "scope") or _g(ss, "instrumentationLibrary", "instrumentation_library") or {}
            scope = scope if isinstance(scope, dict) else {}
            for i, sp in enumerate(_span_list(ss.get("spans"))):
                yield ("span", sp, rattrs or {}, scope, f"{where}#span[{i}]")


def _walk_scope_spans(ev: JsonEvents, start: Event, rattrs: dict[str, Any], where: str) -> Iterator[tuple[Any, ...]]:
    if start[1] != "start_map":
        ev.skip(start)
        return
    scopes: dict[str, Any] = {}
    spans: Any = None  # spans met before any scope key: built whole, converted at the end
    for key, value in ev.map_entries(start):
        if key in SCOPE_KEYS:
            scopes[key] = ev.build(value)
        elif key == "spans" and value[1] == "start_array" and scopes:
            scope = _scope_of(scopes)
            for i, sp in enumerate(ev.items(value)):
                yield ("span", sp, rattrs, scope, f"{where}#span[{i}]")
        elif key == "spans":
            spans = ev.build(value)
        else:
            ev.skip(value)
    if spans:
        scope = _scope_of(scopes)
        for i, sp in enumerate(_span_list(spans)):
            yield ("span", sp, rattrs, scope, f"{where}#span[{i}]")


def _span_list(spans: Any) -> list[Any]:
    """A scope's ``spans``; a value that is not a list is one bad item (tallied by ``convert_span``), so
    the scopes after it are still read."""
    if not spans:
        return []
    return spans if isinstance(spans, list) else [spans]


def _scope_of(scopes: dict[str, Any]) -> dict[str, Any]:
    scope = scopes.get("scope") or scopes.get("instrumentationLibrary") or scopes.get("instrumentation_library") or {}
    return scope if isinstance(scope, dict) else {}
