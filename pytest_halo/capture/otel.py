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
_EXC_KEYS = ("exception.type", "exception.message", "exception.stacktrace", "exception.escaped")


def _value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


class HaloSpanProcessor(SpanProcessor):
    """Converts each ended SDK span to a canonical dict and hands it to the recorder."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._resources: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._scopes: dict[int, tuple[Any, dict[str, str]]] = {}

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        ctx = span.get_span_context()
        if ctx is not None and ctx.trace_id:
            self.recorder.span_started(ctx.trace_id)  # int key: no hex formatting on the hot path

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self.recorder.emit(self.convert(span), span.context.trace_id)
        except Exception:  # never break the instrumented code
            pass

    def _resource(self, resource: Any) -> dict[str, Any]:
        if resource is None:
            return {}
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        attrs = {k: _value(v) for k, v in dict(resource.attributes).items()}
        self._resources[id(resource)] = (resource, attrs)
        return attrs

    def convert(self, span: ReadableSpan) -> dict[str, Any]:
        """ReadableSpan → canonical span dict (exception events folded into ``exception.*``)."""
        ctx = span.context
        parent = span.parent
        raw = span.attributes
        # BoundedAttributes wraps a plain dict; copying it directly avoids the slow Mapping protocol.
        # Tuples stay tuples: orjson writes them as arrays.
        attrs = dict(getattr(raw, "_dict", None) or raw or {})
        events = span.events
        if events:
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
        status = span.status
        start = span.start_time or 0
        end = span.end_time or start
        ts = ctx.trace_state
        return {
            "trace_id": format(ctx.trace_id, "032x"),
            "span_id": format(ctx.span_id, "016x"),
            "parent_span_id": format(parent.span_id, "016x") if parent is not None and parent.span_id else "",
            "trace_state": ts.to_header() if ts else "",
            "name": span.name,
            "kind": _KIND.get(span.kind) or "SPAN_KIND_" + span.kind.name,
            "start_time": fast_iso(start),
            "end_time": fast_iso(max(end, start)),
            "status": {"code": _STATUS.get(status.status_code) or "STATUS_CODE_" + status.status_code.name,
                       "message": status.description or ""},
            "resource": {"attributes": self._resource(span.resource)},
            "scope": self._scope(span.instrumentation_scope),
            "attributes": attrs,
        }

    def _scope(self, scope: Any) -> dict[str, str]:
        cached = self._scopes.get(id(scope))
        if cached is not None and cached[0] is scope:
            return dict(cached[1])
        value = {"name": scope.name if scope else "", "version": (scope.version or "") if scope else ""}
        self._scopes[id(scope)] = (scope, value)
        return dict(value)

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
