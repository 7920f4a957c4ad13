"""Cheap per-span extraction for the hot loop: the few fields detectors read, without ``normalize()``'s full cost.

``normalize`` computes every field for every dialect (flattened-attribute scans, tokens,
provider, two timestamp parses) and builds an object; at a million spans that alone costs
several times the parse of the file. Tool spans and plain-text LLM spans are the bulk of any
trace, so the scanner reads them with these helpers, built on the same key tables
``normalize`` uses (a test checks both agree on real corpora). Anything unusual — errored LLM
calls, tools offered or requested, other dialects — still goes through ``normalize``.
"""

from __future__ import annotations

from typing import Any

import orjson

from engine.traces.span import Span, iso_to_ns

TOOL_ARG_KEYS = ("tool.parameters", "gen_ai.tool.call.arguments", "gen_ai.tool.args", "input.value",
                 "traceloop.entity.input")
TOOL_RESULT_KEYS = ("gen_ai.tool.call.result", "output.value", "gen_ai.output", "traceloop.entity.output")
OI_TEXT = "llm.output_messages.0.message.content"
# When an LLM span carries its text the OpenInference way, any of these means it may also offer or
# request tools (or hold more than one output message): use normalize() for it.
_LLM_COMPLEX_KEYS = (
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
    "llm.tools.0.tool.json_schema",
    "llm.tools.0.tool.name",
    "llm.output_messages.1.message.content",
    "gen_ai.output.messages",
    "halo.tools",
)


def plain_llm(attrs: dict[str, Any]) -> bool:
    """True when an OpenInference LLM span neither offers nor requests tools."""
    for k in _LLM_COMPLEX_KEYS:
        if k in attrs:
            return False
    return True


def duration_ms(start: Any, end: Any) -> float:
    """Span duration in ms; canonical timestamps within one minute subtract as floats (no date parsing)."""
    if type(start) is str and type(end) is str and len(start) == 30 and len(end) == 30 and start[:17] == end[:17]:
        try:
            return (float(end[17:29]) - float(start[17:29])) * 1000.0
        except ValueError:
            return 0.0
    s, e = time_ns(start), time_ns(end)
    return (e - s) / 1e6 if s and e else 0.0


_DAYS: dict[str, int] = {}


def time_ns(value: Any) -> int:
    """Canonical ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` → epoch ns (day cached, no strptime); else ``iso_to_ns``; 0 if bad."""
    if type(value) is str and len(value) == 30 and value[29] == "Z" and value[19] == ".":
        day = _DAYS.get(value[:10])
        if day is None:
            day = (iso_to_ns(value[:10] + "T00:00:00Z") or 0) // 1_000_000_000
            if len(_DAYS) > 100_000:
                _DAYS.clear()
            _DAYS[value[:10]] = day
        try:
            secs = day + int(value[11:13]) * 3600 + int(value[14:16]) * 60 + int(value[17:19])
            return secs * 1_000_000_000 + int(value[20:29])
        except ValueError:
            pass
    return (iso_to_ns(value) or 0) if isinstance(value, str) else 0


def as_text(v: Any) -> str | None:
    """Attribute value as text (JSON for structured values), like ``normalize`` does."""
    if v is None or isinstance(v, str):
        return v
    try:
        return orjson.dumps(v).decode()
    except TypeError:
        return str(v)


def first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """First truthy value among ``keys`` (normalize's ``a or b or c`` chains)."""
    for k in keys:
        v = attrs.get(k)
        if v:
            return v
    return None


def first_str(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        v = attrs.get(k)
        if isinstance(v, str) and v:
            return v
    return None


def error_message(span: Span, attrs: dict[str, Any]) -> str | None:
    """The message of an errored span (status message, else exception/error attributes)."""
    return (span.get("status") or {}).get("message") or first_str(
        attrs, ("exception.message", "error.message", "error.type")
    )
