"""Ended OTel SDK spans → canonical JSONL lines, rendered in batches (the capture hot path).

``HaloSpanProcessor.on_end`` only holds the ended ``ReadableSpan`` (a snapshot the SDK never
changes once the span ended); a test's spans are rendered here in one loop when the test
ends. One loop with local caches is much cheaper per span than a chain of calls per span:

* ids: ``"%032x" %`` (trace ids cached per trace, spans of a test share few traces);
* times: ``str(ns)`` split into epoch seconds (→ cached ``YYYY-MM-DDTHH:MM:SS.`` prefix) and
  the nine fraction digits — no ``datetime``, no format spec;
* name, kind, status, trace state and the ``"resource":…,"scope":…`` block: JSON cached per
  value / object identity (the SDK shares the unset ``Status`` and default ``TraceState``);
* attributes: one ``orjson.dumps`` of the SDK's own dict (copied only when exception events
  are folded in or a value is capped); values are checked against the cap only when the
  whole serialised mapping is longer than the cap.

The line is the same as ``HaloSpanProcessor.convert`` + the recorder's test linkage
(``tests/pytest_halo/test_halo_capture_units.py`` pins it against ``engine.traces.span``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanKind, StatusCode

from engine.traces.span import ns_to_iso
from pytest_halo.capture.writer import capped_body, dumps_compact

_NS = 1_000_000_000
_ISO_PREFIX: dict[str, str] = {}  # epoch seconds (decimal) → "YYYY-MM-DDTHH:MM:SS."
_EXC_KEYS = ("exception.type", "exception.message", "exception.stacktrace", "exception.escaped")
KIND_NAMES = {k: "SPAN_KIND_" + k.name for k in SpanKind}
STATUS_NAMES = {c: "STATUS_CODE_" + c.name for c in StatusCode}
_BOUNDED = BoundedAttributes
_BLIST = BoundedList
_MISSING: Any = object()

# A span's test linkage → the serialised halo attributes plus the closing ``}}\n``.
Suffix = Callable[[Any], bytes]


def iso_prefix(secs: str) -> str:
    """``"YYYY-MM-DDTHH:MM:SS."`` of an epoch second given as its decimal string (cached)."""
    got = _ISO_PREFIX.get(secs)
    if got is None:
        if len(_ISO_PREFIX) > 100_000:
            _ISO_PREFIX.clear()
        got = _ISO_PREFIX[secs] = ns_to_iso(int(secs) * _NS)[:-10]
    return got


def fast_iso(ns: int) -> str:
    """``engine.traces.span.ns_to_iso`` with the per-second prefix cached."""
    if ns < _NS:
        return ns_to_iso(ns)
    s = str(ns)
    return iso_prefix(s[:-9]) + s[-9:] + "Z"


def plain_dict(mapping: Any) -> dict[str, Any]:
    """A ``dict`` with the mapping's items (the mapping itself when it already is one)."""
    if type(mapping) is dict:
        return mapping
    return dict(getattr(mapping, "_dict", None) or mapping or {})


def hex_id(value: int, size: int) -> str:
    """An id as ``2 * size`` lowercase hex digits (``format(value, "0{2*size}x")``, but faster)."""
    try:
        return value.to_bytes(size, "big").hex()
    except OverflowError:  # out of range (not a valid OTel id): still written, as before
        return format(value, f"0{2 * size}x")


def _value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def fold_events(attrs: dict[str, Any], events: Iterable[Any]) -> dict[str, Any]:
    """Exception events → ``exception.*`` attributes (first wins); others → ``halo.events`` JSON."""
    others = []
    for ev in events:
        ev_attrs = ev.attributes or {}
        if ev.name == "exception":
            for k in _EXC_KEYS:
                if k in ev_attrs and k not in attrs:
                    attrs[k] = _value(ev_attrs[k])
        else:
            others.append({"name": ev.name, "time": fast_iso(ev.timestamp or 0),
                           "attributes": {k: _value(v) for k, v in ev_attrs.items()}})
    if others:
        attrs["halo.events"] = orjson.dumps(others, default=str).decode()
    return attrs


def resource_json(resource: Any) -> str:
    """``{"attributes":{...}}`` of an SDK ``Resource`` (tuples as arrays)."""
    attrs = {} if resource is None else {k: _value(v) for k, v in dict(resource.attributes).items()}
    return orjson.dumps({"attributes": attrs}, default=str).decode()


def scope_json(scope: Any) -> str:
    """``{"name":…,"version":…}`` of an instrumentation scope (``""`` when absent)."""
    return orjson.dumps({"name": scope.name if scope else "",
                         "version": (scope.version or "") if scope else ""}).decode()


def status_json(status: Any) -> str:
    code, message = status.status_code, status.description
    return orjson.dumps({"code": STATUS_NAMES.get(code) or "STATUS_CODE_" + code.name,
                         "message": message or ""}).decode()


def trace_state_json(ts: Any) -> str:
    return orjson.dumps(ts.to_header()).decode() if ts else '""'


def held_fields(span: Any, linked: Any) -> tuple[Any, ...]:
    """What the renderer reads of an ended SDK ``ReadableSpan``, plus its test linkage, in one tuple.

    Holding this instead of the span keeps 2 GC-tracked objects alive per held span (the tuple
    and the span context) instead of ~7 (span, attribute and event/link wrappers, deques): a
    test's held spans then stay under the gen-0 threshold and cost no collection. The
    attribute dict of only strings and numbers is not GC-tracked.
    """
    raw, events = span._attributes, span._events
    return (span._context, span._parent, span._name, span._kind, span._status, span._start_time,
            span._end_time, raw._dict if raw.__class__ is _BOUNDED else plain_dict(raw),
            (events if events._dq else None) if events.__class__ is _BLIST  # type: ignore[attr-defined]
            else (tuple(events) or None),
            span._resource, span._instrumentation_scope, linked)


def public_fields(span: Any, linked: Any) -> tuple[Any, ...]:
    """``held_fields`` of any ``ReadableSpan``-like object, read through its public properties."""
    return (span.context, span.parent, span.name, span.kind, span.status, span.start_time, span.end_time,
            plain_dict(span.attributes), tuple(span.events or ()) or None, span.resource,
            span.instrumentation_scope, linked)


class SpanRenderer:
    """Renders held SDK spans; caches live as long as the processor (bounded)."""

    def __init__(self, value_limit: int) -> None:
        self.value_limit = value_limit
        self._names: dict[str, str] = {}
        self._blocks: dict[tuple[int, int], tuple[Any, Any, str]] = {}  # (id(resource), id(scope))

    def _block(self, resource: Any, scope: Any) -> str:
        """``"resource":{…},"scope":{…},"attributes":`` per (resource, scope) pair."""
        key = (id(resource), id(scope))
        got = self._blocks.get(key)
        if got is None or got[0] is not resource or got[1] is not scope:
            if len(self._blocks) > 1000:
                self._blocks.clear()
            got = self._blocks[key] = (resource, scope, f'"resource":{resource_json(resource)},'
                                                        f'"scope":{scope_json(scope)},"attributes":')
        return got[2]

    def _name(self, name: Any) -> str:
        if len(self._names) > 10_000:
            self._names.clear()
        got = self._names[name] = orjson.dumps(name, default=str).decode()
        return got

    def render(self, items: Iterable[tuple[Any, ...]], suffix: Suffix, write: Callable[[bytes], Any],
               trace_ids: dict[str, None]) -> int:
        """``write`` a line per ``held_fields`` tuple, add its trace id to ``trace_ids``; return the count.

        ``suffix(linkage)`` is the serialised test linkage plus the closing ``}}\\n``. A span
        that fails to render is skipped (capture never breaks the run). ``write`` is normally the
        part file's buffered write: keeping a ``bytes`` per line until the test ends would cost
        fresh memory (page faults) per span.
        """
        dumps, names, prefixes, limit = orjson.dumps, self._names, _ISO_PREFIX, self.value_limit
        hexes: dict[int, str] = {}
        last_linked: Any = _MISSING
        sfx = sfx_comma = b""
        last_res: Any = _MISSING
        last_scope: Any = _MISSING
        block = ""
        last_status: Any = _MISSING
        status = ""
        last_ts: Any = _MISSING
        ts_json = '""'
        last_kind: Any = _MISSING
        kind = ""
        last_parent: Any = _MISSING
        pid = ""
        count = 0
        for ctx, parent, name, k, st, start, end, attrs, events, res, scope, linked in items:
            try:
                t = ctx[0]
                tid = hexes.get(t)
                if tid is None:
                    tid = hexes[t] = hex_id(t, 16)
                try:
                    sid = ctx[1].to_bytes(8, "big").hex()
                    if parent is not last_parent:  # siblings share their parent's context object
                        last_parent = parent
                        pid = parent[1].to_bytes(8, "big").hex() if parent is not None and parent[1] else ""
                except OverflowError:  # not a valid OTel id: written as ``format`` would
                    sid = hex_id(ctx[1], 8)
                    pid = hex_id(parent[1], 8) if parent is not None and parent[1] else ""
                    last_parent = _MISSING
                ts = ctx[4]
                if ts is not last_ts:
                    last_ts, ts_json = ts, trace_state_json(ts)
                name_json = names.get(name) or self._name(name)
                if k is not last_kind:
                    last_kind, kind = k, KIND_NAMES.get(k) or "SPAN_KIND_" + k.name
                if st is not last_status:
                    last_status, status = st, status_json(st)
                if res is not last_res or scope is not last_scope:
                    last_res, last_scope, block = res, scope, self._block(res, scope)
                start = start or 0
                end = end or start
                if events is not None:
                    attrs = fold_events(dict(attrs), events)
                try:
                    body = dumps(attrs)
                except (TypeError, orjson.JSONEncodeError):
                    body = dumps_compact(attrs)
                if len(body) > limit:  # only then can a single value be over the cap
                    body = capped_body(attrs, body, limit)
                if linked is not last_linked:
                    last_linked, sfx = linked, suffix(linked)
                    sfx_comma = b"," + sfx
                if start >= _NS and end >= start:
                    s, e = str(start), str(end)
                    sk, ek = s[:-9], e[:-9]
                    sp = prefixes.get(sk) or iso_prefix(sk)
                    ep = sp if ek == sk else prefixes.get(ek) or iso_prefix(ek)
                    head = (f'{{"trace_id":"{tid}","span_id":"{sid}","parent_span_id":"{pid}",'
                            f'"trace_state":{ts_json},"name":{name_json},"kind":"{kind}",'
                            f'"start_time":"{sp}{s[-9:]}Z","end_time":"{ep}{e[-9:]}Z","status":{status},{block}')
                else:
                    head = (f'{{"trace_id":"{tid}","span_id":"{sid}","parent_span_id":"{pid}",'
                            f'"trace_state":{ts_json},"name":{name_json},"kind":"{kind}",'
                            f'"start_time":"{fast_iso(start)}","end_time":"{fast_iso(max(end, start))}",'
                            f'"status":{status},{block}')
                write(b"".join((head.encode(), body[:-1], sfx_comma)) if len(body) > 2 else head.encode() + b"{" + sfx)
                count += 1
                trace_ids[tid] = None
            except Exception:  # noqa: S112 - one odd span must not lose the test's others
                continue
        return count
