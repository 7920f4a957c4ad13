"""Cheap per-span reads for the hot loop: the few fields the common spans need, without ``normalize()``'s cost.

``normalize`` computes every field for every dialect (flattened-attribute scans, tokens,
provider, two timestamp parses) and builds an object; at a million spans that alone costs
several times the parse of the file. Successful tool calls and plain-text LLM calls are the bulk
of any trace, so the scanner reads them with these helpers over ``normalize``'s own key tables
(tests check both agree on real corpora); anything that may be an error, offers or requests
tools, or speaks another dialect goes through ``normalize`` itself.
"""

from __future__ import annotations

from typing import Any

from engine.traces.projection import LLM_COMPLEX_KEYS as _LLM_COMPLEX_KEYS  # shared with the typed fast path
from engine.traces.projection import OI_TEXT
from engine.traces.span import iso_to_ns

__all__ = ["OI_TEXT", "duration_ms", "first", "first_present", "first_str", "plain_llm", "time_ns"]


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


def first_present(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """First value present and not None (``normalize``'s rule for tool arguments and results)."""
    for k in keys:
        v = attrs.get(k)
        if v is not None:
            return v
    return None


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
