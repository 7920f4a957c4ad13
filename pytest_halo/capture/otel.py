"""OpenTelemetry capture: a SpanProcessor writing canonical spans, attached to the app's provider.

Works with any instrumentation that emits through the global SDK ``TracerProvider``
(OpenInference, OpenLLMetry, logfire, pydantic-ai's ``gen_ai`` spans, hand-made spans).
OTel allows the global provider to be set once per process, so:

* if the app already set an SDK provider (or anything with ``add_span_processor``, such
  as logfire's proxy), we add our processor to it;
* otherwise we install an SDK provider at the first test, and wrap
  ``trace.set_tracer_provider`` so a provider the app sets later still wins (we attach
  to it and let it replace ours) instead of being refused;
* ``ensure_attached`` runs at every test start to catch providers set in between.
"""

from __future__ import annotations

from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from engine.traces.span import ns_to_iso
from pytest_halo.capture.recorder import Recorder

_ISO_PREFIX: dict[int, str] = {}


def fast_iso(ns: int) -> str:
    """``ns_to_iso`` with the per-second prefix cached (spans of a run share few seconds)."""
    secs, frac = divmod(ns, 1_000_000_000)
    prefix = _ISO_PREFIX.get(secs)
    if prefix is None:
        if len(_ISO_PREFIX) > 100_000:
            _ISO_PREFIX.clear()
        prefix = ns_to_iso(secs * 1_000_000_000)[:-10]  # "YYYY-MM-DDTHH:MM:SS."
        _ISO_PREFIX[secs] = prefix
    return f"{prefix}{frac:09d}Z"


_KIND = {k: "SPAN_KIND_" + k.name for k in SpanKind}
_STATUS = {c: "STATUS_CODE_" + c.name for c in StatusCode}
_STATUS_UNSET = {"code": "STATUS_CODE_UNSET", "message": ""}  # shared, never mutated
_STATUS_UNSET_JSON = '{"code":"STATUS_CODE_UNSET","message":""}'
_EMPTY = '""'
_EXC_KEYS = ("exception.type", "exception.message", "exception.stacktrace", "exception.escaped")


def _value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


class HaloSpanProcessor(SpanProcessor):
    """Converts each ended SDK span to a canonical dict and hands it to the recorder."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._resources: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._scopes: dict[int, tuple[Any, dict[str, str]]] = {}
        self._resource_json_cache: dict[int, tuple[Any, str]] = {}
        self._names: dict[str, str] = {}
        self._scope_json_cache: dict[int, tuple[Any, str]] = {}

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """Claim the trace for the running test when a root (or remote-parented) span starts.

        A local child's trace was claimed by its root already; skipping it keeps this cheap.
        Claims use the int trace id (no hex formatting on the hot path).
        """
        parent = getattr(span, "_parent", None)
        if parent is not None and not parent.is_remote:
            return
        ctx = span.get_span_context()
        if ctx is not None and ctx.trace_id:
            self.recorder.span_started(ctx.trace_id)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            trace_key, trace_id, prefix, attrs = self.serialize(span)
            self.recorder.emit_serialized(trace_key, trace_id, prefix, attrs)
        except Exception:  # never break the instrumented code
            pass

    def serialize(self, span: Any) -> tuple[int, str, bytes, dict[str, Any]]:
        """(trace key, trace id hex, JSON up to ``"attributes":``, attributes) — same content as ``convert``.

        The hot path: no intermediate dicts; resource/scope/status JSON is cached per object.
        """
        try:
            ctx, parent, raw, events = span._context, span._parent, span._attributes, span._events
            status, kind, name = span._status, span._kind, span._name
            start, end = span._start_time or 0, span._end_time
            resource, scope = span._resource, span._instrumentation_scope
        except AttributeError:
            ctx, parent, raw, events = span.context, span.parent, span.attributes, span.events
            status, kind, name = span.status, span.kind, span.name
            start, end = span.start_time or 0, span.end_time
            resource, scope = span.resource, span.instrumentation_scope
        end = end or start
        attrs = getattr(raw, "_dict", None) or raw or {}
        if events:
            attrs = self._fold_events(dict(attrs), events)
        tid = format(ctx.trace_id, "032x")
        name_json = self._names.get(name)
        if name_json is None:
            if len(self._names) > 10_000:
                self._names.clear()
            name_json = self._names[name] = orjson.dumps(name).decode()
        ts = ctx.trace_state
        code = status.status_code
        if code is StatusCode.UNSET and not status.description:
            status_json = _STATUS_UNSET_JSON
        else:
            status_json = orjson.dumps({"code": _STATUS.get(code) or "STATUS_CODE_" + code.name,
                                        "message": status.description or ""}).decode()
        pid = format(parent.span_id, "016x") if parent is not None and parent.span_id else ""
        head = (
            f'{{"trace_id":"{tid}","span_id":"{ctx.span_id:016x}","parent_span_id":"{pid}",'
            f'"trace_state":{orjson.dumps(ts.to_header()).decode() if ts else _EMPTY},'
            f'"name":{name_json},"kind":"{_KIND.get(kind) or "SPAN_KIND_" + kind.name}",'
            f'"start_time":"{fast_iso(start)}","end_time":"{fast_iso(max(end, start))}","status":{status_json},'
            f'"resource":{self._resource_json(resource)},"scope":{self._scope_json(scope)},"attributes":'
        )
        return ctx.trace_id, tid, head.encode(), attrs

    def _fold_events(self, attrs: dict[str, Any], events: Any) -> dict[str, Any]:
        others = []
        for ev in events:
            if ev.name == "exception":
                for k in _EXC_KEYS:
                    if k in (ev.attributes or {}) and k not in attrs:
                        attrs[k] = _value(ev.attributes[k])
            else:
                others.append({"name": ev.name, "time": fast_iso(ev.timestamp or 0),
                               "attributes": {k: _value(v) for k, v in (ev.attributes or {}).items()}})
        if others:
            attrs["halo.events"] = orjson.dumps(others, default=str).decode()
        return attrs

    def _resource_json(self, resource: Any) -> str:
        cached = self._resource_json_cache.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        text = orjson.dumps(self._resource(resource), default=str).decode()
        self._resource_json_cache[id(resource)] = (resource, text)
        return text

    def _scope_json(self, scope: Any) -> str:
        cached = self._scope_json_cache.get(id(scope))
        if cached is not None and cached[0] is scope:
            return cached[1]
        text = orjson.dumps(self._scope(scope)).decode()
        self._scope_json_cache[id(scope)] = (scope, text)
        return text

    def _resource(self, resource: Any) -> dict[str, Any]:
        """``{"attributes": {...}}`` per resource object, built once and shared (never mutated)."""
        if resource is None:
            return {"attributes": {}}
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        block = {"attributes": {k: _value(v) for k, v in dict(resource.attributes).items()}}
        self._resources[id(resource)] = (resource, block)
        return block

    def convert(self, span: Any) -> dict[str, Any]:
        """ReadableSpan → canonical span dict (exception events folded into ``exception.*``).

        Reads the SDK's private fields when present (each public property is a Python call,
        and this runs once per span); falls back to the public API for other ReadableSpans.
        """
        try:
            ctx, parent, raw, events = span._context, span._parent, span._attributes, span._events
            status, kind, name = span._status, span._kind, span._name
            start, end = span._start_time or 0, span._end_time
            resource, scope = span._resource, span._instrumentation_scope
        except AttributeError:
            ctx, parent, raw, events = span.context, span.parent, span.attributes, span.events
            status, kind, name = span.status, span.kind, span.name
            start, end = span.start_time or 0, span.end_time
            resource, scope = span.resource, span.instrumentation_scope
        end = end or start
        # BoundedAttributes wraps a plain dict; copying it directly avoids the slow Mapping protocol.
        # Tuples stay tuples: orjson writes them as arrays.
        attrs = dict(getattr(raw, "_dict", None) or raw or {})
        if events:
            attrs = self._fold_events(attrs, events)
        ts = ctx.trace_state
        code = status.status_code
        return {
            "trace_id": format(ctx.trace_id, "032x"),
            "span_id": format(ctx.span_id, "016x"),
            "parent_span_id": format(parent.span_id, "016x") if parent is not None and parent.span_id else "",
            "trace_state": ts.to_header() if ts else "",
            "name": name,
            "kind": _KIND.get(kind) or "SPAN_KIND_" + kind.name,
            "start_time": fast_iso(start),
            "end_time": fast_iso(max(end, start)),
            "status": _STATUS_UNSET if code is StatusCode.UNSET and not status.description
            else {"code": _STATUS.get(code) or "STATUS_CODE_" + code.name, "message": status.description or ""},
            "resource": self._resource(resource),
            "scope": self._scope(scope),
            "attributes": attrs,
        }

    def _scope(self, scope: Any) -> dict[str, str]:
        cached = self._scopes.get(id(scope))
        if cached is not None and cached[0] is scope:
            return cached[1]  # shared, never mutated
        value = {"name": scope.name if scope else "", "version": (scope.version or "") if scope else ""}
        self._scopes[id(scope)] = (scope, value)
        return value

    def shutdown(self) -> None:
        self.recorder.writer.flush()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.recorder.writer.flush()
        return True


class OtelCapture:
    """Keeps our processor attached to whatever SDK provider is global, exactly once each."""

    def __init__(self, recorder: Recorder) -> None:
        self.processor = HaloSpanProcessor(recorder)
        self._attached: list[Any] = []  # providers we added the processor to (keep refs: ids stay valid)
        self._installed: Any = None
        self._original_set: Any = None

    def _attach(self, provider: Any) -> None:
        if any(p is provider for p in self._attached):
            return
        provider.add_span_processor(self.processor)
        self._attached.append(provider)

    def ensure_attached(self, install: bool = True) -> None:
        """Attach to the global provider; install one when none is set and ``install`` is true."""
        provider = trace.get_tracer_provider()
        if callable(getattr(provider, "add_span_processor", None)):
            self._attach(provider)
            return
        if install and self._installed is None:
            from opentelemetry.sdk.trace import TracerProvider

            ours = TracerProvider()
            ours.add_span_processor(self.processor)
            self._installed = ours
            self._attached.append(ours)
            trace.set_tracer_provider(ours)
            self._wrap_setter()

    def _wrap_setter(self) -> None:
        """Let an app that sets its provider after ours win (attach to it, then replace ours)."""
        original = trace.set_tracer_provider
        capture = self

        def set_tracer_provider(tracer_provider: Any) -> None:
            current = getattr(trace, "_TRACER_PROVIDER", None)
            if current is capture._installed and callable(getattr(tracer_provider, "add_span_processor", None)):
                capture._attach(tracer_provider)
                once = getattr(trace, "_TRACER_PROVIDER_SET_ONCE", None)
                if once is not None and hasattr(once, "_done"):
                    once._done = False
            original(tracer_provider)

        self._original_set = original
        trace.set_tracer_provider = set_tracer_provider  # type: ignore[assignment]

    def close(self) -> None:
        """Stop capturing: restore the setter and flush; our processor becomes inert."""
        if self._original_set is not None:
            trace.set_tracer_provider = self._original_set  # type: ignore[assignment]
            self._original_set = None
        if self._installed is not None:
            try:
                self._installed.force_flush()
            except Exception:
                pass
