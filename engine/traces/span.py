"""The canonical span: one flat dict per JSONL line, field-compatible with halo-engine 0.3.5's ``SpanRecord``.

Spans are plain dicts, not pydantic models: they are built and read in hot loops
(millions per index build), and a model per span is exactly what makes halo-engine's
index slow. Helpers here coerce the many spellings real producers use (int / ``0x`` /
base64 ids, enum ints, lower-case status strings, ISO or epoch times) into one shape.

Shape (keys in this order when written)::

    trace_id (32 hex) span_id (16 hex) parent_span_id ("" for roots) trace_state name
    kind ("SPAN_KIND_INTERNAL"...) start_time end_time (ISO-8601, 9 fractional digits, "Z")
    status {code: "STATUS_CODE_UNSET|OK|ERROR", message} resource {attributes}
    scope {name, version} attributes {...}
"""

from __future__ import annotations

import base64
import binascii
import calendar
from datetime import datetime, timezone
from typing import Any

Span = dict[str, Any]

STATUS_UNSET = "STATUS_CODE_UNSET"
STATUS_OK = "STATUS_CODE_OK"
STATUS_ERROR = "STATUS_CODE_ERROR"

_STATUS_BY_TOKEN = {
    "unset": STATUS_UNSET,
    "status_code_unset": STATUS_UNSET,
    "statuscode.unset": STATUS_UNSET,
    "0": STATUS_UNSET,
    "ok": STATUS_OK,
    "status_code_ok": STATUS_OK,
    "statuscode.ok": STATUS_OK,
    "1": STATUS_OK,
    "error": STATUS_ERROR,
    "status_code_error": STATUS_ERROR,
    "statuscode.error": STATUS_ERROR,
    "2": STATUS_ERROR,
}

_KINDS = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]
# OTLP enum ints (SPAN_KIND_INTERNAL = 1 ...); the Python SDK's SpanKind enum is 0-based (INTERNAL = 0).
_KIND_BY_TOKEN: dict[str, str] = {}
for _i, _k in enumerate(_KINDS):
    _KIND_BY_TOKEN[_k.lower()] = f"SPAN_KIND_{_k}"
    _KIND_BY_TOKEN[f"span_kind_{_k.lower()}"] = f"SPAN_KIND_{_k}"
    _KIND_BY_TOKEN[f"spankind.{_k.lower()}"] = f"SPAN_KIND_{_k}"
    _KIND_BY_TOKEN[str(_i)] = f"SPAN_KIND_{_k}"
KIND_INTERNAL = "SPAN_KIND_INTERNAL"


def normalize_status_code(value: Any) -> str:
    """Map any status spelling (``ok``, ``StatusCode.ERROR``, ``2``, ``STATUS_CODE_OK``) to the canonical string."""
    if value is None:
        return STATUS_UNSET
    return _STATUS_BY_TOKEN.get(str(value).strip().lower(), STATUS_UNSET)


def normalize_kind(value: Any) -> str:
    """Map any span-kind spelling to ``SPAN_KIND_*`` (unknown → internal)."""
    if value is None or value == "":
        return KIND_INTERNAL
    return _KIND_BY_TOKEN.get(str(value).strip().lower(), KIND_INTERNAL)


_HEX = frozenset("0123456789abcdef")


def normalize_id(value: Any, n_bytes: int) -> str:
    """Return an id as ``2*n_bytes`` lower-case hex, or ``""`` when absent/invalid.

    Accepts ints (the SDK's ``to_json``), ``0x``-prefixed hex, plain hex, base64
    (OTLP/JSON's proto3 mapping of ``bytes``) and UUID-ish strings with dashes.
    An all-zero id is invalid in OTel and maps to ``""``.
    """
    width = 2 * n_bytes
    if value is None or value == "" or isinstance(value, bool):
        return ""
    if isinstance(value, int):
        if value <= 0 or value.bit_length() > 8 * n_bytes:
            return ""
        return format(value, f"0{width}x")
    if not isinstance(value, str):
        return ""
    s = value.strip()
    low = s.lower()
    if low.startswith("0x"):
        low = low[2:]
    if low and len(low) <= width and _HEX.issuperset(low):
        out = low.rjust(width, "0")
        return "" if out.strip("0") == "" else out
    if "-" in low:
        compact = low.replace("-", "")
        if len(compact) == width and _HEX.issuperset(compact):
            return compact
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return ""
    if len(raw) == n_bytes:
        out = raw.hex()
        return "" if out.strip("0") == "" else out
    return ""


def trace_id_hex(value: Any) -> str:
    """Trace id → 32 hex chars (``""`` when invalid)."""
    return normalize_id(value, 16)


def span_id_hex(value: Any) -> str:
    """Span id → 16 hex chars (``""`` when invalid)."""
    return normalize_id(value, 8)


# ---------------------------------------------------------------- time

_EPOCH_SECONDS_CACHE: dict[str, int] = {}


_MINUTE_PREFIX_CACHE: dict[int, str] = {}


def ns_to_iso(ns: int) -> str:
    """Epoch nanoseconds → ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` (halo-engine's format).

    The ``YYYY-MM-DDTHH:MM:`` prefix is cached per minute: bulk exports format two times per trace.
    """
    secs, frac = divmod(int(ns), 1_000_000_000)
    minute, second = divmod(secs, 60)
    prefix = _MINUTE_PREFIX_CACHE.get(minute)
    if prefix is None:
        if len(_MINUTE_PREFIX_CACHE) > 100_000:
            _MINUTE_PREFIX_CACHE.clear()
        prefix = datetime.fromtimestamp(minute * 60, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:")
        _MINUTE_PREFIX_CACHE[minute] = prefix
    return f"{prefix}{second:02d}.{frac:09d}Z"


# datetime.strptime accepts exactly 00..59 in two ASCII digits here (60/61 parse but datetime refuses them),
# and timegm is linear in seconds: a valid minute prefix plus these gives strptime's own answer.
_SECONDS = {f"{i:02d}": i for i in range(60)}


def _epoch_seconds(head: str) -> int | None:
    """``YYYY-MM-DD[T ]HH:MM:SS`` → epoch seconds via strptime (cached per minute by ``iso_to_ns``); None if invalid."""
    key = "m" + head
    base = _EPOCH_SECONDS_CACHE.get(key)
    if base is None:
        try:
            dt = datetime.strptime(head.replace(" ", "T"), "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return None
        base = calendar.timegm(dt.timetuple())
        _EPOCH_SECONDS_CACHE[key] = base
    return base


def iso_to_ns(value: str) -> int | None:
    """ISO-8601 → epoch nanoseconds, so times compare as numbers (never as strings).

    Fast path for the common ``...SS[.fraction](Z|+00:00)`` shape with a cached
    date-time prefix; any other offset goes through ``datetime.fromisoformat``.
    Returns None when unparseable.
    """
    if not isinstance(value, str) or len(value) < 19:
        return None
    head = value[:19]
    base = _EPOCH_SECONDS_CACHE.get(head)
    if base is None:
        secs = head[17:19]
        if head[16] == ":" and secs in _SECONDS:  # cache by minute: strptime per distinct second is slow
            minute = _epoch_seconds(head[:17] + "00")
            if minute is None:
                return None
            base = minute + _SECONDS[secs]
        else:
            base = _epoch_seconds(head)
            if base is None:
                return None
        if len(_EPOCH_SECONDS_CACHE) > 200_000:
            _EPOCH_SECONDS_CACHE.clear()
        _EPOCH_SECONDS_CACHE[head] = base
    if len(value) == 30 and value[29] == "Z" and value[19] == "." and value[20:29].isdigit():
        return base * 1_000_000_000 + int(value[20:29])  # the canonical shape: what the general path gives
    rest = value[19:]
    frac_ns = 0
    if rest.startswith("."):
        i = 1
        while i < len(rest) and rest[i].isdigit():
            i += 1
        digits = rest[1:i]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        rest = rest[i:]
    if rest in ("Z", "z", "", "+00:00", "-00:00", "+0000"):
        return base * 1_000_000_000 + frac_ns
    try:
        offset = datetime.fromisoformat("2000-01-01T00:00:00" + rest).utcoffset()
    except ValueError:
        return None
    if offset is None:
        return base * 1_000_000_000 + frac_ns
    return (base - int(offset.total_seconds())) * 1_000_000_000 + frac_ns


def to_ns(value: Any) -> int | None:
    """Any timestamp producers use → epoch ns: int/float ns, µs, ms or s (by magnitude), digit strings, ISO."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        if v <= 0:
            return None
        if v > 1e17:
            return int(value)
        if v > 1e14:
            return int(v * 1e3)
        if v > 1e11:
            return int(v * 1e6)
        return int(v * 1e9)
    if isinstance(value, str):
        s = value.strip()
        if s.isdigit():
            return to_ns(int(s))
        return iso_to_ns(s)
    return None


# ---------------------------------------------------------------- construction


def make_span(
    *,
    trace_id: str,
    span_id: str,
    name: str,
    start_ns: int,
    end_ns: int,
    parent_span_id: str = "",
    kind: str = KIND_INTERNAL,
    status_code: str = STATUS_UNSET,
    status_message: str = "",
    attributes: dict[str, Any] | None = None,
    resource_attributes: dict[str, Any] | None = None,
    scope_name: str = "",
    scope_version: str = "",
    trace_state: str = "",
) -> Span:
    """Build a canonical span dict (ids must already be hex; times are epoch ns)."""
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent_span_id,
        "trace_state": trace_state,
        "name": name,
        "kind": kind,
        "start_time": ns_to_iso(start_ns),
        "end_time": ns_to_iso(max(end_ns, start_ns)),
        "status": {"code": status_code, "message": status_message or ""},
        "resource": {"attributes": resource_attributes or {}},
        "scope": {"name": scope_name or "", "version": scope_version or ""},
        "attributes": attributes or {},
    }
