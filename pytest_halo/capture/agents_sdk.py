"""OpenAI Agents SDK capture: a ``TracingProcessor`` writing the same spans an ``export()`` file converts to.

The mapping is ``engine.traces.formats.agents_sdk``'s (one mapper, so an agent gets the same
failure-mode ids whether its spans were captured live or read from an export file). Live
capture adds only what ``span.export()`` drops: a response span's ``response`` and ``input``
(model, instructions, offered tools, output, requested calls). Each SDK trace also becomes a
root span so the tree is complete. Spans are written synchronously on end (issue
openai-agents#2135: processors that only flush at shutdown lose spans).

This module imports nothing from ``agents`` at import time; the processor class is built
on first use so a session that never imports the SDK never pays for it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from engine.traces.formats.agents_sdk import build_span, error_type, response_content_attrs, trace_root
from engine.traces.formats.agents_sdk import span_id_of as otel_span_id
from engine.traces.formats.agents_sdk import trace_id_of as otel_trace_id
from engine.traces.problems import Problems
from engine.traces.span import ns_to_iso
from pytest_halo.capture.recorder import Recorder

SCOPE = "openai-agents"
__all__ = ["AgentsCapture", "AgentsProcessorCore", "error_type", "otel_span_id", "otel_trace_id"]


def _now_ns() -> int:
    return time.time_ns()


class AgentsProcessorCore:
    """The processor logic, independent of the SDK's ABC (wrapped by ``make_processor``)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._traces: dict[str, tuple[int, Any]] = {}  # sdk trace id -> (start ns, trace)
        self._agent_of: dict[str, str] = {}  # sdk span id -> agent name in force

    # -- traces become root spans
    def on_trace_start(self, trace: Any) -> None:
        tid = trace.trace_id
        self._traces[tid] = (_now_ns(), trace)
        self.recorder.span_started(otel_trace_id(tid))

    def on_trace_end(self, trace: Any) -> None:
        start, _ = self._traces.pop(trace.trace_id, (None, None))
        self._emit_trace(trace, start or _now_ns(), _now_ns())

    def _emit_trace(self, trace: Any, start: int, end: int) -> None:
        exported: dict[str, Any] = {}
        try:
            exported = trace.export() or {}
        except Exception:
            pass
        self.recorder.emit(trace_root(trace.trace_id, exported, start, end))

    # -- spans
    def on_span_start(self, span: Any) -> None:
        self.recorder.span_started(otel_trace_id(span.trace_id))
        data = span.span_data
        if data.type == "agent":
            self._agent_of[span.span_id] = data.name
        else:
            agent = self._agent_of.get(span.parent_id or "")
            if agent:
                self._agent_of[span.span_id] = agent

    def on_span_end(self, span: Any) -> None:
        try:
            self.recorder.emit(self.convert(span))
        except Exception:
            pass
        finally:
            self._agent_of.pop(span.span_id, None)

    def convert(self, span: Any) -> dict[str, Any]:
        """The shared mapping of ``span.export()``, plus the response content export drops."""
        data = span.span_data
        agent = self._agent_of.get(span.span_id) if data.type != "agent" else None
        exported = dict(span.export() or {})
        now = ns_to_iso(_now_ns())
        if not exported.get("started_at"):
            exported["started_at"] = now
        if not exported.get("ended_at"):
            exported["ended_at"] = now
        out = build_span(exported, agent, Problems(), "live span")
        if out is None:
            raise ValueError("span without ids")
        if data.type == "response":
            response_content_attrs(out["attributes"], data)
        return out

    def flush_open_traces(self) -> None:
        """At session end, write roots for traces that never ended so their spans still have a parent."""
        for tid, (start, trace) in list(self._traces.items()):
            self._traces.pop(tid, None)
            self._emit_trace(trace, start, _now_ns())

    def shutdown(self) -> None:
        self.recorder.writer.flush()

    def force_flush(self) -> None:
        self.recorder.writer.flush()


class AgentsCapture:
    """Registers our processor with the SDK once ``agents`` has been imported by the app."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.core: AgentsProcessorCore | None = None
        self.processor: Any = None

    def ensure_registered(self) -> bool:
        """Register once ``agents`` is imported; re-add if the app replaced the processor list since."""
        mod = sys.modules.get("agents")
        if mod is None or not callable(getattr(mod, "add_trace_processor", None)):
            return False
        if self.processor is not None:
            try:
                from agents.tracing import get_trace_provider

                procs = get_trace_provider()._multi_processor._processors  # type: ignore[attr-defined]  # private
            except Exception:
                return True
            if self.processor not in procs:  # e.g. set_trace_processors([...]) after we registered
                mod.add_trace_processor(self.processor)
            return True
        from agents.tracing import TracingProcessor

        core = AgentsProcessorCore(self.recorder)

        class HaloTracingProcessor(TracingProcessor):
            """Thin SDK-facing adapter delegating to ``AgentsProcessorCore``."""

            def on_trace_start(self, trace: Any) -> None:
                core.on_trace_start(trace)

            def on_trace_end(self, trace: Any) -> None:
                core.on_trace_end(trace)

            def on_span_start(self, span: Any) -> None:
                core.on_span_start(span)

            def on_span_end(self, span: Any) -> None:
                core.on_span_end(span)

            def shutdown(self) -> None:
                core.shutdown()

            def force_flush(self) -> None:
                core.force_flush()

        self.processor = HaloTracingProcessor()
        mod.add_trace_processor(self.processor)
        self.core = core
        return True
