"""OpenAI Agents SDK capture: a ``TracingProcessor`` that keeps the LLM content.

``span.export()`` drops a response span's ``response`` and ``input``, so we read
``span.span_data`` directly and map each span type to attributes the normalizer reads
(``openai_agents.span_type``, ``llm.*``, ``tool.*``, ``input/output.value``). SDK ids
(``trace_<hex>``, ``span_<hex>``) become valid OTel ids by stable hashing; the originals
are kept under ``halo.original.*``. Each SDK trace also becomes a root span so the tree
is complete. Spans are written synchronously on end (issue openai-agents#2135: processors
that only flush at shutdown lose spans).

This module imports nothing from ``agents`` at import time; the processor class is built
on first use so a session that never imports the SDK never pays for it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson

from engine.traces import conventions as C
from engine.traces.formats.agents_sdk import span_id_of as otel_span_id
from engine.traces.formats.agents_sdk import trace_id_of as otel_trace_id
from engine.traces.span import STATUS_ERROR, STATUS_OK, iso_to_ns, ns_to_iso
from pytest_halo.capture.recorder import Recorder

SCOPE = "openai-agents"


def _jsonable(obj: Any) -> Any:
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", exclude_none=True)
        except Exception:
            pass
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return str(obj)


def _json(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    return orjson.dumps(_jsonable(obj), default=str).decode()


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _usage(attrs: dict[str, Any], usage: Any) -> None:
    if not usage:
        return
    tin = _get(usage, "input_tokens", None) or _get(usage, "prompt_tokens", None)
    tout = _get(usage, "output_tokens", None) or _get(usage, "completion_tokens", None)
    if isinstance(tin, int):
        attrs["llm.token_count.prompt"] = tin
    if isinstance(tout, int):
        attrs["llm.token_count.completion"] = tout
    if isinstance(tin, int) and isinstance(tout, int):
        attrs["llm.token_count.total"] = tin + tout


def _input_messages(attrs: dict[str, Any], items: Any, instructions: str | None = None) -> None:
    i = 0
    if instructions:
        attrs["llm.input_messages.0.message.role"] = "system"
        attrs["llm.input_messages.0.message.content"] = instructions
        i = 1
    if isinstance(items, str):
        attrs[f"llm.input_messages.{i}.message.role"] = "user"
        attrs[f"llm.input_messages.{i}.message.content"] = items
        return
    for item in items or []:
        role = _get(item, "role") or _get(item, "type") or "unknown"
        content = _get(item, "content")
        if content is None:
            content = _get(item, "output") if _get(item, "type") == "function_call_output" else None
        if content is None and _get(item, "type") == "function_call":
            content = f"{_get(item, 'name')}({_get(item, 'arguments')})"
        attrs[f"llm.input_messages.{i}.message.role"] = str(role)
        if content is not None:
            attrs[f"llm.input_messages.{i}.message.content"] = content if isinstance(content, str) else _json(content)
        i += 1


def _response_attrs(attrs: dict[str, Any], data: Any) -> None:
    """Responses API span: model, usage, offered tools, output text/refusal and requested tool calls."""
    resp = data.response
    if data.input is not None:
        attrs["input.value"] = _json(data.input)
        attrs["input.mime_type"] = "application/json" if not isinstance(data.input, str) else "text/plain"
    _input_messages(attrs, data.input, _get(resp, "instructions") if resp is not None else None)
    _usage(attrs, getattr(data, "usage", None))
    if resp is None:
        return
    attrs["llm.model_name"] = _get(resp, "model") or ""
    attrs["llm.response.id"] = _get(resp, "id") or ""
    _usage(attrs, _get(resp, "usage"))
    for n, tool in enumerate(_get(resp, "tools") or []):
        schema = _jsonable(tool)
        if isinstance(schema, dict) and "name" not in schema and schema.get("type"):
            schema["name"] = schema["type"]  # hosted tools (web_search, file_search ...) are named by type
        attrs[f"llm.tools.{n}.tool.json_schema"] = _json(schema)
    texts: list[str] = []
    calls = 0
    refusal = False
    for item in _get(resp, "output") or []:
        kind = _get(item, "type")
        if kind == "message":
            for part in _get(item, "content") or []:
                pk = _get(part, "type")
                if pk == "output_text":
                    texts.append(_get(part, "text") or "")
                elif pk == "refusal":
                    refusal = True
                    texts.append(_get(part, "refusal") or "")
        elif kind == "function_call":
            p = f"llm.output_messages.0.message.tool_calls.{calls}.tool_call."
            attrs[p + "function.name"] = _get(item, "name") or ""
            attrs[p + "function.arguments"] = _get(item, "arguments") or ""
            attrs[p + "id"] = _get(item, "call_id") or _get(item, "id") or ""
            calls += 1
    attrs["llm.output_messages.0.message.role"] = "assistant"
    if texts:
        attrs["llm.output_messages.0.message.content"] = "\n".join(texts)
    if refusal:
        attrs["llm.output_messages.0.message.refusal"] = True
    status = _get(resp, "status")
    incomplete = _get(resp, "incomplete_details")
    reason = _get(incomplete, "reason") if incomplete else None
    attrs["llm.finish_reason"] = reason or ("tool_calls" if calls else ("refusal" if refusal else (status or "stop")))
    attrs["output.value"] = _json(_get(resp, "output") or [])
    attrs["output.mime_type"] = "application/json"


def _generation_attrs(attrs: dict[str, Any], data: Any) -> None:
    """Chat Completions span: messages in/out are plain dicts."""
    attrs["llm.model_name"] = data.model or ""
    if data.model_config:
        attrs["llm.invocation_parameters"] = _json(data.model_config)
    _usage(attrs, data.usage)
    if data.input is not None:
        attrs["input.value"] = _json(data.input)
        _input_messages(attrs, data.input)
    texts: list[str] = []
    calls = 0
    for msg in data.output or []:
        content = _get(msg, "content")
        if isinstance(content, str) and content:
            texts.append(content)
        if _get(msg, "refusal"):
            texts.append(str(_get(msg, "refusal")))
        for tc in _get(msg, "tool_calls") or []:
            fn = _get(tc, "function") or {}
            p = f"llm.output_messages.0.message.tool_calls.{calls}.tool_call."
            attrs[p + "function.name"] = _get(fn, "name") or ""
            attrs[p + "function.arguments"] = _get(fn, "arguments") or ""
            attrs[p + "id"] = _get(tc, "id") or ""
            calls += 1
    if data.output is not None:
        attrs["llm.output_messages.0.message.role"] = "assistant"
        attrs["output.value"] = _json(data.output)
    if texts:
        attrs["llm.output_messages.0.message.content"] = "\n".join(texts)


def span_attributes(data: Any, agent: str | None) -> tuple[str, dict[str, Any]]:
    """(span name, attributes) for one SDK ``span_data``."""
    kind = data.type
    attrs: dict[str, Any] = {"openai_agents.span_type": kind}
    name = kind
    if agent:
        attrs["gen_ai.agent.name"] = agent
    if kind == "agent":
        name = data.name
        attrs["gen_ai.agent.name"] = data.name
        attrs["openai_agents.agent.tools"] = list(data.tools or [])
        attrs["openai_agents.agent.handoffs"] = list(data.handoffs or [])
        if data.output_type:
            attrs["openai_agents.agent.output_type"] = data.output_type
    elif kind == "function":
        name = data.name
        attrs["tool.name"] = data.name
        if data.input is not None:
            attrs["input.value"] = data.input if isinstance(data.input, str) else _json(data.input)
        if data.output is not None:
            attrs["output.value"] = data.output if isinstance(data.output, str) else _json(data.output)
        if data.mcp_data:
            attrs["openai_agents.mcp_data"] = _json(data.mcp_data)
    elif kind == "response":
        _response_attrs(attrs, data)
        attrs["llm.provider"] = "openai"
        attrs["llm.system"] = "openai"
    elif kind == "generation":
        _generation_attrs(attrs, data)
        attrs["llm.provider"] = "openai"
        attrs["llm.system"] = "openai"
    elif kind == "handoff":
        name = f"handoff {data.from_agent} -> {data.to_agent}"
        attrs["openai_agents.handoff.from_agent"] = data.from_agent or ""
        attrs["openai_agents.handoff.to_agent"] = data.to_agent or ""
    elif kind == "guardrail":
        name = data.name
        attrs["guardrail.name"] = data.name
        attrs["guardrail.triggered"] = bool(data.triggered)
    elif kind == "custom":
        name = data.name
        attrs["openai_agents.custom.data"] = _json(data.data)
    elif kind == "task":
        name = data.name
        if data.usage:
            attrs["openai_agents.usage"] = _json(data.usage)
    elif kind == "turn":
        name = f"turn {data.turn}"
        attrs["gen_ai.agent.name"] = data.agent_name
        if data.usage:
            attrs["openai_agents.usage"] = _json(data.usage)
    elif kind == "mcp_tools":
        name = f"mcp list_tools {data.server}"
        attrs["openai_agents.mcp.server"] = data.server or ""
        attrs["openai_agents.mcp.result"] = list(data.result or [])
    else:
        exported = data.export() or {}
        attrs["openai_agents.data"] = _json(exported)
        name = str(exported.get("name") or kind)
    return name, attrs


_ERROR_TYPES = (
    ("Error running tool", "ToolError"),
    ("Max turns exceeded", "MaxTurnsExceeded"),
    ("Tool not found", "ToolNotFound"),
    ("Guardrail", "GuardrailTripwireTriggered"),
    ("Error in agent run", "AgentRunError"),
)


def error_type(message: str) -> str:
    """A class-like name for an SDK ``SpanError`` (the SDK records a message, not an exception type)."""
    for prefix, name in _ERROR_TYPES:
        if message.startswith(prefix):
            return name
    return "AgentsSDKError"


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
        tid = trace.trace_id
        exported: dict[str, Any] = {}
        try:
            exported = trace.export() or {}
        except Exception:
            pass
        attrs: dict[str, Any] = {
            "openinference.span.kind": "CHAIN",
            "openai_agents.span_type": "trace",
            C.ORIGINAL_TRACE_ID: tid,
            C.ORIGINAL_SPAN_ID: tid,
        }
        if exported.get("group_id"):
            attrs["openai_agents.group_id"] = exported["group_id"]
        if exported.get("metadata"):
            attrs["openai_agents.metadata"] = _json(exported["metadata"])
        self.recorder.emit({
            "trace_id": otel_trace_id(tid), "span_id": otel_span_id(tid), "parent_span_id": "",
            "trace_state": "", "name": str(getattr(trace, "name", "") or "trace"), "kind": "SPAN_KIND_INTERNAL",
            "start_time": ns_to_iso(start), "end_time": ns_to_iso(max(end, start)),
            "status": {"code": "STATUS_CODE_UNSET", "message": ""}, "resource": {"attributes": {}},
            "scope": {"name": SCOPE, "version": ""}, "attributes": attrs,
        })

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
        data = span.span_data
        agent = self._agent_of.get(span.span_id) if data.type != "agent" else None
        name, attrs = span_attributes(data, agent)
        tid, sid, pid = span.trace_id, span.span_id, span.parent_id
        attrs[C.ORIGINAL_TRACE_ID] = tid
        attrs[C.ORIGINAL_SPAN_ID] = sid
        if pid:
            attrs[C.ORIGINAL_PARENT_ID] = pid
        parent = otel_span_id(pid) if pid else otel_span_id(tid)  # top-level spans hang off the trace root
        now = _now_ns()
        start = iso_to_ns(span.started_at or "") or now
        end = iso_to_ns(span.ended_at or "") or now
        err = span.error
        code, message = STATUS_OK, ""
        if err:
            code = STATUS_ERROR
            message = str(_get(err, "message") or "error")
            edata = _get(err, "data")
            detail = _get(edata, "error") if isinstance(edata, dict) else None
            attrs["exception.message"] = str(detail or message)
            attrs["exception.type"] = error_type(message)
            if edata:
                attrs["openai_agents.error.data"] = _json(edata)
            if detail:
                message = f"{message}: {detail}"
        return {
            "trace_id": otel_trace_id(tid), "span_id": otel_span_id(sid), "parent_span_id": parent,
            "trace_state": "", "name": name, "kind": "SPAN_KIND_CLIENT" if data.type in ("response", "generation")
            else "SPAN_KIND_INTERNAL",
            "start_time": ns_to_iso(start), "end_time": ns_to_iso(max(end, start)),
            "status": {"code": code, "message": message}, "resource": {"attributes": {}},
            "scope": {"name": SCOPE, "version": ""}, "attributes": attrs,
        }

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
