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

from engine.traces import conventions as C
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
from engine.traces.span import STATUS_ERROR, STATUS_UNSET, Span, make_span, to_ns

FORMAT = "agents_sdk"
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
            for tc in o.get("tool_calls") or []:
                calls.append(tc)
    msg: dict[str, Any] = {"role": "assistant"}
    if texts:
        msg["content"] = "\n".join(texts)
    if calls:
        msg["tool_calls"] = calls
    return [msg]


def _usage(attrs: dict[str, Any], usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    tin = usage.get("input_tokens", usage.get("prompt_tokens"))
    tout = usage.get("output_tokens", usage.get("completion_tokens"))
    if isinstance(tin, int) and not isinstance(tin, bool):
        attrs["llm.token_count.prompt"] = tin
    if isinstance(tout, int) and not isinstance(tout, bool):
        attrs["llm.token_count.completion"] = tout
    total = usage.get("total_tokens")
    if isinstance(total, int) and not isinstance(total, bool):
        attrs["llm.token_count.total"] = total


def map_span_data(sd: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``span_data`` → (span name, attributes)."""
    t = str(sd.get("type") or "custom")
    attrs: dict[str, Any] = {}
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
        agent = str(sd.get("name") or "agent")
        name = f"invoke_agent {agent}"
        attrs["gen_ai.operation.name"] = "invoke_agent"
        attrs["gen_ai.agent.name"] = agent
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
        if isinstance(model, str):
            attrs["llm.model_name"] = model
        if isinstance(sd.get("input"), list):
            message_attrs(attrs, "llm.input_messages", sd["input"])
        if isinstance(sd.get("output"), list):
            message_attrs(attrs, "llm.output_messages", _responses_output_as_message(sd["output"]))
        if sd.get("model_config") is not None:
            attrs["llm.invocation_parameters"] = to_text(sd["model_config"])
        _usage(attrs, sd.get("usage"))
    elif t == "response":
        name = "response"
        attrs["gen_ai.operation.name"] = "chat"
        if sd.get("response_id") is not None:
            attrs["openai_agents.response_id"] = str(sd["response_id"])
        _usage(attrs, sd.get("usage"))
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


def convert_item(obj: dict[str, Any], traces: dict[str, dict[str, Any]], problems: Problems, where: str) -> Span | None:
    """One ``trace.span`` object → canonical span (or None, counted)."""
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
    name, attrs = map_span_data(sd)
    end = to_ns(obj.get("ended_at"))
    if end is None or end < start:
        reason = "missing_end_time" if end is None else "end_before_start"
        problems.repair(reason, where)
        attrs[C.REPAIRED] = reason
        end = start
    tid = trace_id_of(raw_tid)
    parent = obj.get("parent_id")
    attrs[C.ORIGINAL_TRACE_ID] = str(raw_tid)
    attrs[C.ORIGINAL_SPAN_ID] = str(raw_sid)
    if parent:
        attrs[C.ORIGINAL_PARENT_ID] = str(parent)
    flatten_into(attrs, "openai_agents.metadata", obj.get("metadata"))
    if not parent:
        info = traces.get(str(raw_tid))
        if info:
            if info.get("workflow_name") is not None:
                attrs["openai_agents.workflow_name"] = str(info["workflow_name"])
            if info.get("group_id") is not None:
                attrs["openai_agents.group_id"] = str(info["group_id"])
            flatten_into(attrs, "openai_agents.trace.metadata", info.get("metadata"))
    code, message = STATUS_UNSET, ""
    err = obj.get("error")
    if isinstance(err, dict) and (err.get("message") or err.get("data")):
        code = STATUS_ERROR
        message = str(err.get("message") or "error")
        data = err.get("data")
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            message = f"{message}: {data['error']}"
            attrs["error.message"] = data["error"]
        flatten_into(attrs, "openai_agents.error.data", data)
    attrs[C.SOURCE_FORMAT] = FORMAT
    return make_span(
        trace_id=tid,
        span_id=span_id_of(raw_sid),
        parent_span_id=span_id_of(parent) if parent else "",
        name=name,
        start_ns=start,
        end_ns=end,
        status_code=code,
        status_message=message,
        attributes=attrs,
        scope_name="openai-agents",
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
    """Yield the spans of an Agents SDK export (trace objects enrich root spans)."""
    items = list(_items(path, problems))
    traces: dict[str, dict[str, Any]] = {}
    for _, it in items:
        if isinstance(it, dict) and it.get("object") == "trace" and it.get("id"):
            traces[str(it["id"])] = it
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
        span = convert_item(it, traces, problems, where)
        if span is not None:
            yield span
