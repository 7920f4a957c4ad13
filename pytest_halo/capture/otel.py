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

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode

from pytest_halo.capture.otel_render import (
    KIND_NAMES,
    STATUS_NAMES,
    SpanRenderer,
    fast_iso,
    fold_events,
    held_fields,
    plain_dict,
    public_fields,
)
from pytest_halo.capture.recorder import Recorder

__all__ = ["HaloSpanProcessor", "OtelCapture", "fast_iso"]

_STATUS_UNSET = {"code": "STATUS_CODE_UNSET", "message": ""}  # shared, never mutated


def _value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


class HaloSpanProcessor(SpanProcessor):
    """Holds each ended SDK span for its test; the recorder renders a test's spans at its end.

    ``on_end`` does the minimum synchronously (the SDK calls it inline in the app's code):
    a span of the running test is appended, unserialised, to that test's held items. Any
    other span (background thread after its test, outside tests, non-SDK span classes) is
    rendered and emitted at once.
    """

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.renderer = SpanRenderer(recorder.value_limit)
        recorder.renderer = self.renderer.render
        recorder.freeze = held_fields
        self._hold = recorder.hold
        self._resources: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._scopes: dict[int, tuple[Any, dict[str, str]]] = {}

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
            if span.__class__ is ReadableSpan:
                if self._hold(span._context[0], span):  # type: ignore[index]
                    return
                self.emit_now(span, held_fields)
            else:
                self.emit_now(span, public_fields)
        except Exception:  # never break the instrumented code
            pass

    def emit_now(self, span: Any, fields: Any = held_fields) -> None:
        """Render one span and hand it to the recorder (attribution, caps, outcome as usual).

        ``fields`` reads the span: ``held_fields`` for the SDK's ``ReadableSpan``, else ``public_fields``.
        """
        trace_key = span.context.trace_id
        linked = self.recorder.context.attribution(trace_key)
        out = bytearray()
        trace_ids: dict[str, None] = {}
        if self.renderer.render([fields(span, linked)], self.recorder.suffix, out.extend, trace_ids):
            self.recorder.emit_line(linked, next(iter(trace_ids)), bytes(out))

    def convert(self, span: Any) -> dict[str, Any]:
        """ReadableSpan → canonical span dict (exception events folded into ``exception.*``).

        The readable reference of what ``SpanRenderer`` writes (the tests compare the two).
        """
        ctx, parent, status, kind = span.context, span.parent, span.status, span.kind
        start, end = span.start_time or 0, span.end_time
        end = end or start
        attrs = dict(plain_dict(span.attributes))
        if span.events:
            attrs = fold_events(attrs, span.events)
        ts = ctx.trace_state
        code = status.status_code
        return {
            "trace_id": format(ctx.trace_id, "032x"),
            "span_id": format(ctx.span_id, "016x"),
            "parent_span_id": format(parent.span_id, "016x") if parent is not None and parent.span_id else "",
            "trace_state": ts.to_header() if ts else "",
            "name": span.name,
            "kind": KIND_NAMES.get(kind) or "SPAN_KIND_" + kind.name,
            "start_time": fast_iso(start),
            "end_time": fast_iso(max(end, start)),
            "status": _STATUS_UNSET if code is StatusCode.UNSET and not status.description
            else {"code": STATUS_NAMES.get(code) or "STATUS_CODE_" + code.name, "message": status.description or ""},
            "resource": self._resource(span.resource),
            "scope": self._scope(span.instrumentation_scope),
            "attributes": attrs,
        }

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
