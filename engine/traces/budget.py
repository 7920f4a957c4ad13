"""Byte budgets for tool results: cap attribute values, measure serialized size, cut lists to fit.

An LLM tool result that is hundreds of KB wastes the context window or overflows it
(halo-engine's measured 86–258 KB). Every store result goes through here: values are
capped with a marker saying how much was cut and how to get the rest, and lists are cut
to the budget with a note on what to ask next.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

DEFAULT_BUDGET = 64 * 1024
DISCOVERY_CAP = 4096  # view_trace / search: enough head to see what happened
SURGICAL_CAP = 16384  # view_spans: the caller named the spans it wants
_FLAT_PROJECTION = re.compile(r"^(?:llm\.(?:input|output)_messages|mcp\.tools|llm\.tools)\.\d+\.")

T = TypeVar("T")


def size_of(obj: Any) -> int:
    """Serialized JSON size in bytes (orjson; pydantic models via ``model_dump``)."""
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json")
    return len(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS, default=str))


def cap_value(value: Any, cap: int, hint: str = "") -> Any:
    """Cap one attribute value at ``cap`` characters of its JSON form, saying what was cut."""
    if isinstance(value, str):
        if len(value) <= cap:
            return value
        return f"{value[:cap]}… [truncated: {len(value):,} chars{hint}]"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    except TypeError:
        text = str(value)
    if len(text) <= cap:
        return value
    return f"{text[:cap]}… [truncated: {len(text):,} chars of JSON{hint}]"


def cap_span(span: dict[str, Any], cap: int) -> dict[str, Any]:
    """A copy of ``span`` with every attribute value capped and flat message projections dropped."""
    hint = f"; search_span(trace_id, '{span.get('span_id', '')}', pattern) for the rest"
    attrs = span.get("attributes")
    out = dict(span)
    if isinstance(attrs, dict):
        new: dict[str, Any] = {}
        dropped = 0
        for k, v in attrs.items():
            if _FLAT_PROJECTION.match(k):
                dropped += 1
                continue
            new[cap_value(k, 256)] = cap_value(v, cap, hint)
        if dropped:
            new["halo.dropped_flat_projections"] = (
                f"{dropped} llm.input_messages.<i>.* style keys dropped; the JSON-blob attributes carry the same"
            )
        out["attributes"] = new
    res = span.get("resource")
    if isinstance(res, dict) and isinstance(res.get("attributes"), dict):
        out["resource"] = {"attributes": {k: cap_value(v, 512) for k, v in res["attributes"].items()}}
    status = span.get("status")
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        out["status"] = {**status, "message": cap_value(status["message"], cap, hint)}
    if isinstance(out.get("name"), str):
        out["name"] = cap_value(out["name"], 512)
    return out


def take_within(items: Sequence[T], budget: int, size: Callable[[T], int] = size_of) -> list[T]:
    """The longest prefix of ``items`` whose serialized sizes (+ separators) fit ``budget`` bytes."""
    out: list[T] = []
    used = 0
    for it in items:
        n = size(it) + 1
        if used + n > budget:
            break
        used += n
        out.append(it)
    return out


def cap_list(values: Sequence[str], max_items: int = 50, max_chars: int = 200) -> list[str]:
    """A sorted facet list cut to ``max_items`` entries of ``max_chars``, with a ``…+N more`` marker."""
    vals = [v if len(v) <= max_chars else v[:max_chars] + "…" for v in values[:max_items]]
    if len(values) > max_items:
        vals.append(f"…+{len(values) - max_items} more")
    return vals
