"""OpenTelemetry SDK ``ReadableSpan.to_json()`` output → canonical spans.

Accepted containers: JSONL (one span per line), concatenated pretty-printed span objects
(what ``ConsoleSpanExporter`` writes), a ``{"spans": [...]}`` document (any-agent's
trace dumps) and a JSON list of spans. Ids may be ints (128-bit, so the stdlib parser is
used: orjson refuses them) or ``0x`` hex; status and kind may be spelled any way
(``ok``, ``StatusCode.ERROR``, ``SpanKind.INTERNAL``); ``parent`` is null, an object, or
``parent_id``. Files with committed git merge-conflict markers are not JSON and are
reported as ``merge_conflict_markers`` (file:line of the first marker), never guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.traces import conventions
from engine.traces.formats.common import (
    convert_records,
    decode_text,
    dict_at,
    exception_attrs,
    iter_documents,
    json_safe,
    open_binary,
    read_bytes,
)
from engine.traces.formats.stream import (
    CHUNK,
    Event,
    JsonEvents,
    is_jsonl,
    jsonl_values,
    labelled,
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

FORMAT = "otel_sdk"
CONFLICT_RX = re.compile(r"^(<{7}|={7}|>{7})(?: |$)", re.MULTILINE)


def looks_like(obj: Any) -> bool:
    return isinstance(obj, dict) and (isinstance(obj.get("context"), dict) or isinstance(obj.get("spans"), list))


def _attrs(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, list):  # some exporters write [{"key":..., "value":...}]
        out: dict[str, Any] = {}
        for kv in v:
            if isinstance(kv, dict) and "key" in kv:
                out[str(kv["key"])] = json_safe(kv.get("value"))
        return out
    return {}


def convert_span(obj: Any, problems: Problems, where: str) -> Span | None:
    """One ``to_json()`` span object → canonical span (or None, counted)."""
    if not isinstance(obj, dict):
        problems.skip("not_an_object", where)
        return None
    ctx = dict_at(obj, "context")
    tid = trace_id_hex(ctx.get("trace_id", obj.get("trace_id")))
    sid = span_id_hex(ctx.get("span_id", obj.get("span_id")))
    if not tid:
        problems.skip("missing_trace_id", where)
        return None
    if not sid:
        problems.skip("missing_span_id", where)
        return None
    parent = obj.get("parent")
    if isinstance(parent, dict):
        pid = span_id_hex(parent.get("span_id"))
    else:
        pid = span_id_hex(obj.get("parent_id", parent))
    start = to_ns(obj.get("start_time"))
    if start is None:
        problems.skip("bad_timestamp", where, f"start_time={obj.get('start_time')!r}"[:100])
        return None
    attrs = _attrs(obj.get("attributes"))
    end = to_ns(obj.get("end_time"))
    if end is None:
        problems.repair("missing_end_time", where)
        attrs[conventions.REPAIRED] = "missing_end_time"
        end = start
    elif end < start:
        problems.repair("end_before_start", where)
        attrs[conventions.REPAIRED] = "end_before_start"
        end = start
    status = obj.get("status")
    if isinstance(status, dict):
        code = normalize_status_code(status.get("status_code", status.get("code")))
        msg = status.get("description", status.get("message"))
    else:
        code, msg = normalize_status_code(status), None
    for k, v in exception_attrs(obj.get("events")).items():
        attrs.setdefault(k, json_safe(v))
    if code == "STATUS_CODE_ERROR" and not msg and isinstance(attrs.get("exception.message"), str):
        msg = attrs["exception.message"]
    attrs[conventions.SOURCE_FORMAT] = FORMAT
    res = obj.get("resource")
    rattrs = _attrs(res.get("attributes")) if isinstance(res, dict) else {}
    scope = obj.get("instrumentation_scope") or obj.get("instrumentation_info") or {}
    ts = ctx.get("trace_state")
    name = obj.get("name")
    return make_span(
        trace_id=tid,
        span_id=sid,
        parent_span_id=pid,
        name=name if isinstance(name, str) else ("" if name is None else str(name)),
        kind=normalize_kind(obj.get("kind")),
        start_ns=start,
        end_ns=end,
        status_code=code,
        status_message=msg if isinstance(msg, str) else "",
        attributes=attrs,
        resource_attributes=rattrs,
        scope_name=scope.get("name", "") if isinstance(scope, dict) else "",
        scope_version=(scope.get("version") or "") if isinstance(scope, dict) else "",
        trace_state=ts if isinstance(ts, str) and ts != "[]" else "",
    )


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield the spans of one SDK ``to_json`` file (big documents are read incrementally, one span at a time)."""
    if should_stream(path):
        yield from _iter_streamed(path, problems)
        return
    text = decode_text(read_bytes(path), problems, f"{path}:1")
    m = CONFLICT_RX.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        n = len(CONFLICT_RX.findall(text))
        problems.skip("merge_conflict_markers", f"{path}:{line}", f"{n} conflict marker lines; file not parsed")
        return
    for where, value in iter_documents(path, problems, text):
        yield from convert_records(value, ("spans",), where, convert_span, problems)


_MARKERS = (b"<<<<<<<", b"=======", b">>>>>>>")


def conflict_markers(path: Path) -> tuple[int, int]:
    """``(count, first line)`` of git merge-conflict marker lines (``CONFLICT_RX``), read in chunks."""
    count, first, lines, carry = 0, 0, 0, b"\n"  # the leading newline lets line 1 match like the others
    with open_binary(path) as fh:
        while True:
            chunk = fh.read(16 * CHUNK)
            buf = carry + chunk
            cut = len(buf) if not chunk else buf.rfind(b"\n")
            if cut <= 0 and chunk:
                carry = buf
                continue
            body, carry = buf[:cut], buf[cut:]
            for marker in _MARKERS:
                at = body.find(b"\n" + marker)
                while at >= 0:
                    after = body[at + 8 : at + 9]
                    if after in (b" ", b"\n") or (after == b"" and not chunk):
                        count += 1
                        line = lines + body.count(b"\n", 0, at + 1)
                        first = line if not first else min(first, line)
                    at = body.find(b"\n" + marker, at + 1)
            lines += body.count(b"\n")
            if not chunk:
                return count, first


def _iter_streamed(path: Path, problems: Problems) -> Iterator[Span]:
    n, line = conflict_markers(path)
    if n:
        problems.skip("merge_conflict_markers", f"{path}:{line}", f"{n} conflict marker lines; file not parsed")
        return
    start = (0, 1)
    if is_jsonl(path):  # one span (or list) per line: each line parsed as a whole
        for kind, where, value in jsonl_values(path, problems):
            if kind == "rest":
                start = where
                break
            yield from convert_records(value, ("spans",), where, convert_span, problems)
        else:
            return
    for obj, where in with_exact_retry(path, problems, lambda ev: _walk(ev, path), start):
        span = convert_span(obj, problems, where)
        if span is not None:
            yield span


def _walk(ev: JsonEvents, path: Path) -> Iterator[tuple[Any, str]]:
    """``(span object, where)`` per record, as ``convert_records`` names them, one span built at a time."""
    while (first := ev.next()) is not None:
        where = f"{path}:{ev.reader.lines + 1}"
        if first[1] == "start_array":
            yield from labelled(ev.items(first), where, "spans")
        elif first[1] == "start_map":
            yield from _walk_object(ev, first, where)
        else:
            yield first[2], where


def _walk_object(ev: JsonEvents, start: Event, where: str) -> Iterator[tuple[Any, str]]:
    """A ``{"spans": [...]}`` container (its spans streamed) or one span object (built key by key)."""
    obj: dict[str, Any] = {}
    streamed = False
    for key, value in ev.map_entries(start):
        if key == "spans" and value[1] == "start_array" and not streamed:
            streamed = True
            yield from labelled(ev.items(value), where, "spans")
        else:
            obj[key] = ev.build(value)
    if not streamed and ev.error is None:
        yield obj, where
