"""OpenAI Agents SDK ``span.export()`` / ``trace.export()`` JSONL → canonical spans.

Lines are ``{"object": "trace.span", "id": "span_<24hex>", "trace_id": "trace_<32hex>",
"parent_id", "started_at", "ended_at", "span_data": {"type": ...}, "error": {message, data}}``
plus ``{"object": "trace", "id", "workflow_name", "group_id", "metadata"}`` (written at
trace end, so after its spans: the file is read in two passes). Also accepted: a JSON list
of such items or the backend exporter's ``{"data": [...]}`` payload.

Ids: the trace id's 32 hex become the OTel trace id; span ids (24 hex, not OTel-sized)
become a stable 16-hex hash; originals are kept under ``halo.original.*``. ``span_data``
is mapped to OpenInference / GenAI attributes so the one normalizer understands it; the
SDK's own type is kept as ``openai_agents.span_type`` (task/turn spans, exported as
``custom`` with ``data.sdk_span_type``, get their real type back).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from engine.traces import conventions
from engine.traces.formats.common import (
    decode_text,
    dict_at,
    flatten_into,
    iter_json_values,
    message_attrs,
    read_bytes,
    stable_hex,
    to_text,
)
from engine.traces.problems import Problems
from engine.traces.span import (
    KIND_INTERNAL,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    Span,
    iso_to_ns,
    make_span,
    to_ns,
)

FORMAT = "agents_sdk"
SCOPE = "openai-agents"
KIND_CLIENT = "SPAN_KIND_CLIENT"
_TRACE_RX = re.compile(r"^trace_([0-9a-f]{32})$")
_OI_KIND = {
    "agent": "AGENT",
    "function": "TOOL",
    "generation": "LLM",
    "response": "LLM",
    "guardrail": "GUARDRAIL",
    "task": "CHAIN",
    "turn": "CHAIN",
}


def trace_id_of(raw: Any) -> str:
    """``trace_<32hex>`` → the 32 hex; anything else (or the invalid all-zero id) → a stable hash of it.

    Shared with pytest capture, so a span captured live and the same span read from an
    ``export()`` file get the same OTel ids."""
    s = str(raw)
    m = _TRACE_RX.match(s.lower())
    return m.group(1) if m and m.group(1).strip("0") else stable_hex(32, "agents_sdk.trace", s)


def span_id_of(raw: Any) -> str:
    """SDK span ids are 24 hex: hash them (stably) to OTel's 16."""
    return stable_hex(16, "agents_sdk.span", str(raw))


def _responses_output_as_message(output: list[Any]) -> list[dict[str, Any]]:
    """Responses-API output items (``message`` / ``function_call``) → one chat-style assistant message."""
    if all(isinstance(o, dict) and "role" in o and o.get("type") in (None, "message") and "content" in o
           and not isinstance(o.get("content"), list) for o in output):
        return [o for o in output if isinstance(o, dict)]  # already chat-completions messages
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for o in output:
        if not isinstance(o, dict):
            continue
        if o.get("type") == "function_call":
            calls.append({"id": o.get("call_id") or o.get("id"), "function": {"name": o.get("name"), "arguments": o.get("arguments")}})
        elif o.get("type") == "message" or "content" in o:
            content = o.get("content")
            if isinstance(content, str):
                texts.append(content)
            for part in content if isinstance(content, list) else []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    texts.append(part["text"])
            for tc in _list_of(o.get("tool_calls")):
                calls.append(tc)
    msg: dict[str, Any] = {"role": "assistant"}
    if texts:
        msg["content"] = "\n".join(texts)
    if calls:
        msg["tool_calls"] = calls
    return [msg]


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


def _list_of(v: Any) -> list[Any] | tuple[Any, ...]:
    """``v`` when it is a list (or tuple), else ``[]``: exported span data is untrusted JSON."""
    return v if isinstance(v, (list, tuple)) else []


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


def response_content_attrs(attrs: dict[str, Any], data: Any) -> None:
    """What a live Responses-API span holds and ``export()`` drops (model, instructions, input, offered tools,
    output text/refusal, requested tool calls): live capture adds it to ``map_span_data``'s attributes."""
    resp = data.response
    if data.input is not None:
        attrs["input.value"] = _json(data.input)
        attrs["input.mime_type"] = "application/json" if not isinstance(data.input, str) else "text/plain"
    _input_messages(attrs, data.input, _get(resp, "instructions") if resp is not None else None)
    usage_attrs(attrs, _jsonable(getattr(data, "usage", None)))
    if resp is None:
        return
    attrs["llm.model_name"] = _get(resp, "model") or ""
    attrs["llm.response.id"] = _get(resp, "id") or ""
    usage_attrs(attrs, _jsonable(_get(resp, "usage")))
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


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def usage_attrs(attrs: dict[str, Any], usage: Any) -> None:
    """Token usage (Responses or Chat Completions spelling) → OpenInference token counts."""
    if not isinstance(usage, dict):
        return
    tin = _int(usage.get("input_tokens", usage.get("prompt_tokens")))
    tout = _int(usage.get("output_tokens", usage.get("completion_tokens")))
    total = _int(usage.get("total_tokens"))
    if total is None and tin is not None and tout is not None:
        total = tin + tout
    for key, v in (("llm.token_count.prompt", tin), ("llm.token_count.completion", tout),
                   ("llm.token_count.total", total)):
        if v is not None:
            attrs[key] = v


def map_span_data(sd: dict[str, Any], agent: str | None = None) -> tuple[str, dict[str, Any]]:
    """Exported ``span_data`` → (span name, attributes): the one mapping live capture and files share.

    ``agent`` is the agent in force (the nearest enclosing agent span's name), written on every
    span below an agent so the analysis can attribute calls to agents however the spans arrived.
    """
    t = str(sd.get("type") or "custom")
    attrs: dict[str, Any] = {}
    if agent:
        attrs["gen_ai.agent.name"] = agent
    name = t
    if t == "custom" and isinstance(sd.get("data"), dict) and sd["data"].get("sdk_span_type") in ("task", "turn"):
        data = sd["data"]
        t = data["sdk_span_type"]
        if t == "turn":
            name = f"turn {data.get('turn')}"
            if isinstance(data.get("agent_name"), str):
                attrs["openai_agents.agent.name"] = data["agent_name"]
                attrs["gen_ai.agent.name"] = data["agent_name"]
            attrs["openai_agents.turn"] = data.get("turn")
        else:
            name = f"task {data.get('name')}" if data.get("name") else "task"
        # run-level usage repeats the generations' tokens: kept apart so token totals don't double count
        flatten_into(attrs, "openai_agents.usage", data.get("usage"))
    attrs["openai_agents.span_type"] = t
    if t in _OI_KIND:
        attrs["openinference.span.kind"] = _OI_KIND[t]
    if t == "agent":
        agent_name = str(sd.get("name") or "agent")
        name = f"invoke_agent {agent_name}"
        attrs["gen_ai.operation.name"] = "invoke_agent"
        attrs["gen_ai.agent.name"] = agent_name
        for k in ("tools", "handoffs"):
            if isinstance(sd.get(k), list):
                attrs[f"openai_agents.agent.{k}"] = [str(x) for x in sd[k]]
        if sd.get("output_type") is not None:
            attrs["openai_agents.agent.output_type"] = str(sd["output_type"])
    elif t == "function":
        tool = str(sd.get("name") or "function")
        name = f"execute_tool {tool}"
        attrs["gen_ai.operation.name"] = "execute_tool"
        attrs["tool.name"] = tool
        if sd.get("input") is not None:
            attrs["input.value"] = to_text(sd["input"])
        if sd.get("output") is not None:
            attrs["output.value"] = to_text(sd["output"])
        flatten_into(attrs, "openai_agents.mcp_data", sd.get("mcp_data"))
    elif t == "generation":
        model = sd.get("model")
        name = f"chat {model}" if model else "generation"
        attrs["gen_ai.operation.name"] = "chat"
        attrs["llm.provider"] = attrs["llm.system"] = "openai"
        if isinstance(model, str):
            attrs["llm.model_name"] = model
        if sd.get("input") is not None:
            attrs["input.value"] = to_text(sd["input"])
        if isinstance(sd.get("input"), list):
            message_attrs(attrs, "llm.input_messages", sd["input"])
        if isinstance(sd.get("output"), list):
            message_attrs(attrs, "llm.output_messages", _responses_output_as_message(sd["output"]))
            attrs["output.value"] = to_text(sd["output"])
        if sd.get("model_config") is not None:
            attrs["llm.invocation_parameters"] = to_text(sd["model_config"])
        usage_attrs(attrs, sd.get("usage"))
    elif t == "response":
        name = "response"
        attrs["gen_ai.operation.name"] = "chat"
        attrs["llm.provider"] = attrs["llm.system"] = "openai"
        if sd.get("response_id") is not None:
            attrs["openai_agents.response_id"] = str(sd["response_id"])
        usage_attrs(attrs, sd.get("usage"))
    elif t == "handoff":
        src, dst = sd.get("from_agent"), sd.get("to_agent")
        name = f"handoff {src} -> {dst}"
        if src is not None:
            attrs["openai_agents.handoff.from_agent"] = str(src)
        if dst is not None:
            attrs["openai_agents.handoff.to_agent"] = str(dst)
    elif t == "guardrail":
        name = f"guardrail {sd.get('name')}"
        attrs["openai_agents.guardrail.name"] = str(sd.get("name"))
        attrs["openai_agents.guardrail.triggered"] = bool(sd.get("triggered"))
    elif t == "mcp_tools":
        name = f"mcp_tools {sd.get('server')}"
        if sd.get("server") is not None:
            attrs["openai_agents.mcp.server"] = str(sd["server"])
        if isinstance(sd.get("result"), list):
            attrs["openai_agents.mcp.tools"] = [str(x) for x in sd["result"]]
    elif t == "custom":
        name = str(sd.get("name") or "custom")
        flatten_into(attrs, "openai_agents.data", sd.get("data"))
    elif t not in ("task", "turn"):  # transcription, speech, speech_group, future types
        for k, v in sd.items():
            if k != "type":
                flatten_into(attrs, f"openai_agents.{t}.{k}", v)
        if isinstance(sd.get("model"), str):
            attrs["llm.model_name"] = sd["model"]
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


def error_fields(err: Any, attrs: dict[str, Any]) -> tuple[str, str]:
    """An exported ``error`` (``{message, data}``) → (status code, status message); adds ``exception.*`` attrs.

    The message is completed with what the data names: the failing tool's error, or the tool a
    "Tool not found" is about (``data.tool_name``, kept as ``openai_agents.error.data.tool_name``).
    """
    if not (isinstance(err, dict) and (err.get("message") or err.get("data"))):
        return STATUS_OK, ""
    message = str(err.get("message") or "error")
    data = err.get("data")
    detail = None
    if isinstance(data, dict):
        for key in ("error", "tool_name"):
            if isinstance(data.get(key), str) and data[key]:
                detail = data[key]
                break
    attrs["exception.type"] = error_type(message)
    attrs["exception.message"] = detail or message
    flatten_into(attrs, "openai_agents.error.data", data)
    return STATUS_ERROR, f"{message}: {detail}" if detail else message


def agent_in_force(span_id: Any, items: dict[str, dict[str, Any]]) -> str | None:
    """The name of the nearest agent span above ``span_id`` (not the span itself), from exported items by id."""
    seen: set[str] = set()
    cur = items.get(str(span_id))
    parent = cur.get("parent_id") if cur else None
    while parent and str(parent) not in seen:
        seen.add(str(parent))
        it = items.get(str(parent))
        if it is None:
            return None
        sd = dict_at(it, "span_data")
        if sd.get("type") == "agent":
            return str(sd.get("name") or "agent")
        parent = it.get("parent_id")
    return None


def build_span(obj: dict[str, Any], agent: str | None, problems: Problems, where: str) -> Span | None:
    """One exported ``trace.span`` object → canonical span (or None, counted). Top-level spans hang off
    the trace's root span (``trace_root``), as in live capture."""
    raw_tid, raw_sid = obj.get("trace_id"), obj.get("id")
    if not raw_tid:
        problems.skip("missing_trace_id", where)
        return None
    if not raw_sid:
        problems.skip("missing_span_id", where)
        return None
    start = to_ns(obj.get("started_at"))
    if start is None:
        problems.skip("bad_timestamp", where, f"started_at={obj.get('started_at')!r}"[:100])
        return None
    sd = dict_at(obj, "span_data")
    name, attrs = map_span_data(sd, agent)
    end = to_ns(obj.get("ended_at"))
    if end is None or end < start:
        reason = "missing_end_time" if end is None else "end_before_start"
        problems.repair(reason, where)
        attrs[conventions.REPAIRED] = reason
        end = start
    parent = obj.get("parent_id")
    attrs[conventions.ORIGINAL_TRACE_ID] = str(raw_tid)
    attrs[conventions.ORIGINAL_SPAN_ID] = str(raw_sid)
    if parent:
        attrs[conventions.ORIGINAL_PARENT_ID] = str(parent)
    flatten_into(attrs, "openai_agents.metadata", obj.get("metadata"))
    code, message = error_fields(obj.get("error"), attrs)
    attrs[conventions.SOURCE_FORMAT] = FORMAT
    return make_span(
        trace_id=trace_id_of(raw_tid),
        span_id=span_id_of(raw_sid),
        parent_span_id=span_id_of(parent) if parent else span_id_of(raw_tid),
        name=name,
        kind=KIND_CLIENT if attrs["openai_agents.span_type"] in ("response", "generation") else KIND_INTERNAL,
        start_ns=start,
        end_ns=end,
        status_code=code,
        status_message=message,
        attributes=attrs,
        scope_name=SCOPE,
    )


def trace_root(raw_tid: Any, info: dict[str, Any] | None, start_ns: int, end_ns: int) -> Span:
    """The root span standing for one SDK trace (its ``trace.export()`` as ``info`` when known)."""
    info = info or {}
    attrs: dict[str, Any] = {
        "openinference.span.kind": "CHAIN",
        "openai_agents.span_type": "trace",
        conventions.ORIGINAL_TRACE_ID: str(raw_tid),
        conventions.ORIGINAL_SPAN_ID: str(raw_tid),
    }
    if info.get("workflow_name") is not None:
        attrs["openai_agents.workflow_name"] = str(info["workflow_name"])
    if info.get("group_id") is not None:
        attrs["openai_agents.group_id"] = str(info["group_id"])
    flatten_into(attrs, "openai_agents.trace.metadata", info.get("metadata"))
    attrs[conventions.SOURCE_FORMAT] = FORMAT
    return make_span(
        trace_id=trace_id_of(raw_tid),
        span_id=span_id_of(raw_tid),
        name=str(info.get("workflow_name") or "trace"),
        start_ns=start_ns,
        end_ns=max(end_ns, start_ns),
        status_code=STATUS_UNSET,
        attributes=attrs,
        scope_name=SCOPE,
    )


def _items(path: Path, problems: Problems) -> Iterator[tuple[str, Any]]:
    """``(where, item)`` for every exported item, JSONL or a JSON document."""
    text = decode_text(read_bytes(path), problems, f"{path}:1")
    for lineno, value, err in iter_json_values(text):
        where = f"{path}:{lineno}"
        if value is None:
            problems.skip("malformed_json", where, err)
            continue
        yield from _unwrap(value, where)


def _unwrap(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and isinstance(value.get("data"), list) and "object" not in value:
        value = value["data"]
    if isinstance(value, list):
        for i, v in enumerate(value):
            yield f"{where}#[{i}]", v
    else:
        yield where, value


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield the spans of an Agents SDK export, plus one root span per SDK trace (as live capture writes)."""
    items = list(_items(path, problems))
    traces: dict[str, dict[str, Any]] = {}
    by_id: dict[str, dict[str, Any]] = {}
    for _, it in items:
        if isinstance(it, dict) and it.get("object") == "trace" and it.get("id"):
            traces[str(it["id"])] = it
        elif isinstance(it, dict) and it.get("object") in ("trace.span", None) and it.get("id"):
            by_id[str(it["id"])] = it
    extent: dict[str, tuple[int, int]] = {}  # raw trace id -> (first start, last end) of its spans
    for where, it in items:
        if not isinstance(it, dict):
            problems.skip("not_an_object", where)
            continue
        obj = it.get("object")
        if obj == "trace":
            continue
        if obj not in ("trace.span", None):
            problems.skip("unknown_object", where, str(obj))
            continue
        span = build_span(it, agent_in_force(it.get("id"), by_id), problems, where)
        if span is None:
            continue
        raw_tid = str(it["trace_id"])
        s0, s1 = iso_to_ns(span["start_time"]) or 0, iso_to_ns(span["end_time"]) or 0
        lo, hi = extent.get(raw_tid, (s0, s1))
        extent[raw_tid] = (min(lo, s0), max(hi, s1))
        yield span
    for raw_tid, (lo, hi) in extent.items():
        yield trace_root(raw_tid, traces.get(raw_tid), lo, hi)
