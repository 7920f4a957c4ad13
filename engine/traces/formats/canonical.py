"""Canonical JSONL (halo-engine 0.3.5 ``SpanRecord``, and our own output): validate, coerce, skip what cannot be kept.

``canonicalize_record`` is the reusable core (the index's fast path calls it for lines
that need coercion): it returns ``(span, skip_reason, repairs)``. Coercions: int / ``0x`` /
base64 ids → hex, non-OTel id strings → a stable hash with the original kept under
``halo.original.*``, any kind / status spelling, epoch or offset timestamps, missing end
time, end before start, non-dict attribute maps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from engine.traces import conventions
from engine.traces.formats.common import (
    BOM,
    NO_DOCUMENT,
    cap_values,
    dict_at,
    iter_lines,
    json_safe,
    load_document,
    read_head,
    stable_hex,
    str_at,
)
from engine.traces.problems import Problems
from engine.traces.span import (
    Span,
    iso_to_ns,
    normalize_kind,
    normalize_status_code,
    ns_to_iso,
    span_id_hex,
    to_ns,
    trace_id_hex,
)

FORMAT = "canonical"
REQUIRED = ("trace_id", "span_id", "start_time")


def looks_like(obj: Any) -> bool:
    """One JSONL record with canonical ids, ISO-ish times and a status object or string."""
    return (
        isinstance(obj, dict)
        and "trace_id" in obj
        and "span_id" in obj
        and "start_time" in obj
        and "context" not in obj
        and "span_data" not in obj
        and obj.get("object") != "trace.span"
    )


def _id(value: Any, n_chars: int, attrs: dict[str, Any], orig_key: str, repairs: list[str]) -> str:
    """Hex id from any spelling; a non-empty non-OTel id becomes a stable hash (original kept)."""
    out = trace_id_hex(value) if n_chars == 32 else span_id_hex(value)
    if out:
        if out != value:
            repairs.append("id_coerced")
        return out
    if value is None or value == "" or value == 0:
        return ""
    attrs[orig_key] = str(value)
    repairs.append("non_otel_id")
    return stable_hex(n_chars, "id", value)  # same salt for span and parent ids: links survive


def _time(value: Any) -> int | None:
    if isinstance(value, str):
        ns = iso_to_ns(value)
        return ns if ns is not None else to_ns(value)
    return to_ns(value)


def _is_canonical_iso(raw: Any) -> bool:
    """``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` exactly: such a string is kept as is (byte-identical round trip)."""
    return (
        isinstance(raw, str)
        and len(raw) == 30
        and raw[-1] == "Z"
        and raw[10] == "T"
        and raw[19] == "."
        and raw[20:29].isdigit()
    )


def _status(value: Any) -> tuple[str, str]:
    if isinstance(value, dict):
        code = value.get("code", value.get("status_code"))
        msg = value.get("message", value.get("description"))
        return normalize_status_code(code), msg if isinstance(msg, str) else ("" if msg is None else str(msg))
    return normalize_status_code(value), ""


def canonicalize_record(obj: Any) -> tuple[Span | None, str, list[str]]:
    """Coerce one parsed canonical-ish record: ``(span, "", repairs)`` or ``(None, skip_reason, [])``."""
    if not isinstance(obj, dict):
        return None, "not_an_object", []
    repairs: list[str] = []
    attrs = obj.get("attributes")
    if not isinstance(attrs, dict):
        if attrs is not None:
            repairs.append("bad_attributes")
        attrs = {}
    else:
        attrs = dict(attrs)
    raw_tid, raw_sid = obj.get("trace_id"), obj.get("span_id")
    if raw_tid is None or raw_tid == "":
        return None, "missing_trace_id", []
    if raw_sid is None or raw_sid == "":
        return None, "missing_span_id", []
    tid = _id(raw_tid, 32, attrs, conventions.ORIGINAL_TRACE_ID, repairs)
    sid = _id(raw_sid, 16, attrs, conventions.ORIGINAL_SPAN_ID, repairs)
    if not tid:
        return None, "invalid_trace_id", []
    if not sid:
        return None, "invalid_span_id", []
    pid = _id(obj.get("parent_span_id"), 16, attrs, conventions.ORIGINAL_PARENT_ID, repairs)
    start_raw, end_raw = obj.get("start_time"), obj.get("end_time")
    start = _time(start_raw)
    if start is None:
        return None, "bad_timestamp", []
    start_iso = start_raw if _is_canonical_iso(start_raw) else ns_to_iso(start)
    end = _time(end_raw)
    if end is None or end < start:
        repairs.append("missing_end_time" if end is None else "end_before_start")
        end, end_iso = start, start_iso
    else:
        end_iso = end_raw if _is_canonical_iso(end_raw) else ns_to_iso(end)
    code, msg = _status(obj.get("status"))
    resource = obj.get("resource")
    rattrs = resource.get("attributes") if isinstance(resource, dict) else None
    if not isinstance(rattrs, dict):
        rattrs = {}
    scope = dict_at(obj, "scope")
    name = obj.get("name")
    if not isinstance(name, str):
        name = "" if name is None else str(name)
        repairs.append("bad_name")
    kind = obj.get("kind")
    nkind = normalize_kind(kind)
    if kind is not None and kind != nkind:
        repairs.append("kind_coerced")
    ts = obj.get("trace_state")
    span: Span = {
        "trace_id": tid,
        "span_id": sid,
        "parent_span_id": pid,
        "trace_state": ts if isinstance(ts, str) else "",
        "name": name,
        "kind": nkind,
        "start_time": start_iso,
        "end_time": end_iso,
        "status": {"code": code, "message": msg},
        "resource": {"attributes": rattrs},
        "scope": {
            "name": str_at(scope, "name"),
            "version": str_at(scope, "version"),
        },
        "attributes": attrs,
    }
    if repairs:
        prev = attrs.get(conventions.REPAIRED)
        done = prev.split(",") if isinstance(prev, str) and prev else []
        attrs[conventions.REPAIRED] = ",".join(dict.fromkeys(done + repairs))
    return span, "", repairs


def _keep(obj: Any, problems: Problems, where: str) -> Span | None:
    span, reason, repairs = canonicalize_record(obj)
    if span is None:
        problems.skip(reason, where)
        return None
    for r in repairs:
        problems.repair(r, where)
    cap_values(span, problems, where)
    span["attributes"].setdefault(conventions.SOURCE_FORMAT, FORMAT)
    return span


def _iter_array(path: Path, problems: Problems) -> Iterator[Span]:
    """A JSON array of canonical records (someone saved a list instead of JSONL)."""
    doc = load_document(path, problems)
    if doc is NO_DOCUMENT:
        return
    for i, obj in enumerate(doc if isinstance(doc, list) else [doc]):
        span = _keep(obj, problems, f"{path}:[{i}]")
        if span is not None:
            yield span


def _slow_parse(line: bytes, problems: Problems, where: str, error: str) -> Any | None:
    """The rare lines orjson refuses: invalid UTF-8 (repaired) or ints beyond 64 bits (stdlib json)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        text = line.decode("utf-8", errors="replace")
        problems.repair("invalid_utf8", where)
    try:
        return json_safe(json.loads(text))
    except (ValueError, RecursionError):
        problems.skip("malformed_json", where, error)
        return None


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield every keepable span of a canonical JSONL file (or JSON array); count the rest by reason."""
    if read_head(path, 64).removeprefix(BOM).lstrip()[:1] == b"[":
        yield from _iter_array(path, problems)
        return
    for lineno, line in iter_lines(path):
        where = f"{path}:{lineno}"
        if lineno == 1:
            line = line.removeprefix(BOM)
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            obj = _slow_parse(line, problems, where, str(exc))
            if obj is None:
                continue
        span = _keep(obj, problems, where)
        if span is not None:
            yield span
