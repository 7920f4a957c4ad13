"""The normalized view of a span: what an agent-failure analysis needs, whatever dialect produced it.

Producers disagree on spelling: OpenInference (``openinference.span.kind``, ``llm.*``,
``tool.*``, ``input/output.value``, flattened ``llm.input_messages.N...``), OTel GenAI old
and new (``gen_ai.system`` / ``gen_ai.provider.name``, ``prompt_tokens`` / ``input_tokens``,
``gen_ai.tool.call.arguments``), Traceloop (``traceloop.*``), Langfuse
(``langfuse.observation.*``), and halo-engine's own ``inference.*`` projections. Ingest
converters map foreign *formats* to canonical spans; this module maps *dialects* to one
view. Two entry points:

* ``rollup(span)`` — the cheap tuple the index needs per span (hot loop: plain dict gets).
* ``normalize(span)`` — the full ``NormalizedSpan`` the detectors and the store use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.traces import conventions
from engine.traces.span import STATUS_ERROR, Span

TRACEBACK_HEADER = "Traceback (most recent call last):"
CATEGORIES = ("agent", "llm", "tool", "chain", "guardrail", "handoff", "other")

OI_KIND_TO_CATEGORY = {
    "AGENT": "agent",
    "LLM": "llm",
    "TOOL": "tool",
    "CHAIN": "chain",
    "GUARDRAIL": "guardrail",
    "RETRIEVER": "tool",
    "EMBEDDING": "llm",
    "RERANKER": "tool",
    "EVALUATOR": "other",
}
GENAI_OP_TO_CATEGORY = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "call_llm": "llm",
    "embeddings": "llm",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "invoke_workflow": "chain",
}
TRACELOOP_KIND_TO_CATEGORY = {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool"}
LANGFUSE_TYPE_TO_CATEGORY = {
    "GENERATION": "llm",
    "SPAN": "chain",
    "EVENT": "other",
    "AGENT": "agent",
    "TOOL": "tool",
    "CHAIN": "chain",
    "RETRIEVER": "tool",
    "EMBEDDING": "llm",
    "GUARDRAIL": "guardrail",
}
AGENTS_SDK_TYPE_TO_CATEGORY = {
    "agent": "agent",
    "generation": "llm",
    "response": "llm",
    "function": "tool",
    "mcp_tools": "other",  # listing an MCP server's tools is not a tool call
    "handoff": "handoff",
    "guardrail": "guardrail",
    "custom": "chain",
    "task": "chain",
    "turn": "chain",
}


def category_of(attrs: dict[str, Any], name: str = "") -> str:
    """Classify a span by the first dialect that speaks about it."""
    k = attrs.get("openinference.span.kind")
    if isinstance(k, str):
        cat = OI_KIND_TO_CATEGORY.get(k.upper())
        if cat:
            return cat
    t = attrs.get("openai_agents.span_type")
    if isinstance(t, str) and t in AGENTS_SDK_TYPE_TO_CATEGORY:
        return AGENTS_SDK_TYPE_TO_CATEGORY[t]
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and op in GENAI_OP_TO_CATEGORY:
        return GENAI_OP_TO_CATEGORY[op]
    tk = attrs.get("traceloop.span.kind")
    if isinstance(tk, str) and tk in TRACELOOP_KIND_TO_CATEGORY:
        return TRACELOOP_KIND_TO_CATEGORY[tk]
    lt = attrs.get("langfuse.observation.type")
    if isinstance(lt, str) and lt.upper() in LANGFUSE_TYPE_TO_CATEGORY:
        return LANGFUSE_TYPE_TO_CATEGORY[lt.upper()]
    if "gen_ai.tool.name" in attrs or "tool.name" in attrs:
        return "tool"
    if (
        "gen_ai.request.model" in attrs
        or "llm.model_name" in attrs
        or "gen_ai.system" in attrs
        or "llm.request.type" in attrs
    ):
        return "llm"
    if "gen_ai.agent.name" in attrs or "agent.name" in attrs:
        return "agent"
    low = name.lower()
    if low.startswith(("execute_tool", "tool")):
        return "tool"
    if low.startswith(("invoke_agent", "agent")):
        return "agent"
    if "guardrail" in low:
        return "guardrail"
    if "handoff" in low:
        return "handoff"
    return "other"


def _first_str(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        v = attrs.get(k)
        if isinstance(v, str) and v:
            return v
    return None


def _first_present(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """First value that is present and not None (an empty tool result is still a result)."""
    for k in keys:
        v = attrs.get(k)
        if v is not None:
            return v
    return None


def tool_name_from_span_name(name: str) -> str:
    """``execute_tool get_weather`` → ``get_weather`` (GenAI span naming); else the span name."""
    head, _, rest = name.partition(" ")
    return rest.strip() if head == "execute_tool" and rest.strip() else name


def _first_int(attrs: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for k in keys:
        v = attrs.get(k)
        if v is None or isinstance(v, bool):  # None first: the common miss stays cheap (index hot loop)
            continue
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            return int(v)
        if isinstance(v, str) and v.isdigit():
            return int(v)
    return None


MODEL_KEYS = (
    "inference.llm.model_name",
    "llm.model_name",
    "gen_ai.response.model",
    "gen_ai.request.model",
    "langfuse.observation.model.name",
    "ai.model.id",
)
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
INPUT_TOKEN_KEYS = (
    "inference.llm.input_tokens",
    "llm.token_count.prompt",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "langfuse.observation.usage.input",
)
OUTPUT_TOKEN_KEYS = (
    "inference.llm.output_tokens",
    "llm.token_count.completion",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "langfuse.observation.usage.output",
)
TOOL_NAME_KEYS = ("tool.name", "gen_ai.tool.name", "traceloop.entity.name", "langfuse.observation.name")
TOOL_ARGS_KEYS = (
    "tool.parameters",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.args",  # any-agent before the GenAI spec named it
    "input.value",
    "traceloop.entity.input",
    "langfuse.observation.input",
)
TOOL_RESULT_KEYS = (
    "gen_ai.tool.call.result",
    "output.value",
    "gen_ai.output",  # any-agent
    "genai.output",  # any-agent's typo in some releases
    "traceloop.entity.output",
    "langfuse.observation.output",
)
FINISH_REASON_KEYS = (
    "gen_ai.response.finish_reasons",
    "gen_ai.response.finish_reason",
    "llm.finish_reason",
    "gen_ai.completion.0.finish_reason",
)
AGENT_NAME_KEYS = ("inference.agent_name", "gen_ai.agent.name", "agent.name", "openai_agents.agent.name")
# the tool an error on a non-tool span is about (the Agents SDK's "Tool not found" on a turn span)
ERROR_TOOL_KEYS = ("openai_agents.error.data.tool_name",)
# keys whose presence means an LLM span recorded its output (absent all of them, the output is unknown:
# GenAI instrumentations capture no message content by default)
_OUTPUT_KEYS = frozenset(
    {"gen_ai.output.messages", "output.value", "langfuse.observation.output", "gen_ai.output", "genai.output",
     "gen_ai.completion.0.content", "gen_ai.completion.0.role"}
)


LANGFUSE_USAGE = "langfuse.observation.usage_details"


def langfuse_usage(attrs: dict[str, Any]) -> tuple[int | None, int | None]:
    """Langfuse SDK v3 writes usage as one JSON attribute: ``{"input": n, "output": m, ...}``."""
    u = _maybe_json(attrs.get(LANGFUSE_USAGE))
    if not isinstance(u, dict):
        return None, None
    return _first_int(u, ("input", "prompt_tokens", "input_tokens")), _first_int(
        u, ("output", "completion_tokens", "output_tokens")
    )


def rollup(span: Span) -> tuple[str, str | None, int, int, str | None, str | None, bool]:
    """Per-span facts the index rolls up: (category, model, in_tokens, out_tokens, tool, agent, is_error).

    Deliberately cheap: a handful of dict lookups, no JSON decoding.
    """
    attrs = span.get("attributes") or {}
    cat = category_of(attrs, span.get("name") or "")
    model = _first_str(attrs, MODEL_KEYS) if cat == "llm" or "llm.model_name" in attrs else None
    tin = _first_int(attrs, INPUT_TOKEN_KEYS) or 0
    tout = _first_int(attrs, OUTPUT_TOKEN_KEYS) or 0
    if not (tin or tout) and LANGFUSE_USAGE in attrs:  # rare: only Langfuse-SDK spans pay the JSON decode
        tin, tout = (x or 0 for x in langfuse_usage(attrs))
    tool = (_first_str(attrs, TOOL_NAME_KEYS) or tool_name_from_span_name(span.get("name") or "")) if cat == "tool" else None
    agent = _first_str(attrs, AGENT_NAME_KEYS)
    if agent is None and cat == "agent":
        agent = span.get("name") or None
    status = span.get("status") or {}
    return cat, model, tin, tout, tool, agent, status.get("code") == STATUS_ERROR


# ---------------------------------------------------------------- full view


@dataclass(slots=True)
class ToolCall:
    """A tool call the model asked for (not necessarily executed)."""

    name: str
    arguments: str | None = None
    call_id: str | None = None


@dataclass(slots=True)
class NormalizedSpan:
    """Dialect-free facts about one span; computed on demand from the canonical span."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    category: str
    start_ns: int
    end_ns: int
    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    agent_name: str | None = None
    tool_name: str | None = None
    tool_arguments: str | None = None
    tool_result: str | None = None
    tools_offered: dict[str, Any] = field(default_factory=dict)  # name -> JSON schema (or {})
    tool_calls_requested: list[ToolCall] = field(default_factory=list)
    output_text: str | None = None
    output_recorded: bool = False  # False: the span carries no output at all (unknown, not empty)
    finish_reason: str | None = None
    is_error: bool = False
    error_message: str | None = None
    error_type: str | None = None
    error_tool: str | None = None  # the tool an error names, when the errored span is not the tool's
    test_nodeid: str | None = None
    test_outcome: str | None = None
    test_worker: str | None = None
    run_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # the raw span's, read-only


def _list_at(m: Any, key: str) -> list[Any]:
    """``m[key]`` when ``m`` is a dict holding a list there, else ``[]`` (message content is untrusted)."""
    v = m.get(key) if isinstance(m, dict) else None
    return v if isinstance(v, list) else []


def _maybe_json(v: Any) -> Any:
    if isinstance(v, (str, bytes)):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return v
    return v


def as_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    try:
        return orjson.dumps(v).decode()
    except TypeError:
        return str(v)


def _indexed_groups(attrs: dict[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """Collect flattened ``prefix.N.rest`` keys into ``{N: {rest: value}}`` (OpenInference style)."""
    out: dict[int, dict[str, Any]] = {}
    plen = len(prefix)
    for k, v in attrs.items():
        if not k.startswith(prefix):
            continue
        rest = k[plen:]
        idx, _, tail = rest.partition(".")
        if idx.isdigit():
            out.setdefault(int(idx), {})[tail] = v
    return out


def _offered_tools(attrs: dict[str, Any]) -> dict[str, Any]:
    tools: dict[str, Any] = {}
    for group in _indexed_groups(attrs, "llm.tools.").values():
        schema = _maybe_json(group.get("tool.json_schema"))
        if isinstance(schema, dict):
            fn = schema.get("function", schema)
            name = fn.get("name") if isinstance(fn, dict) else None
            if isinstance(name, str):
                tools[name] = fn.get("parameters") or {}
        elif isinstance(group.get("tool.name"), str):
            tools[group["tool.name"]] = {}
    for key in ("gen_ai.tool.definitions", "gen_ai.request.tools", "llm.request.functions", "halo.tools"):
        raw = _maybe_json(attrs.get(key))
        if isinstance(raw, list):
            for t in raw:
                if not isinstance(t, dict):
                    continue
                fn = t.get("function", t)
                name = fn.get("name") if isinstance(fn, dict) else None
                if isinstance(name, str):
                    tools.setdefault(name, fn.get("parameters") or fn.get("input_schema") or {})
    for group in _indexed_groups(attrs, "llm.request.functions.").values():
        name = group.get("name")
        if isinstance(name, str):
            tools.setdefault(name, _maybe_json(group.get("parameters")) or {})
    return tools


def _requested_calls(attrs: dict[str, Any]) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for _, msg in sorted(_indexed_groups(attrs, "llm.output_messages.").items()):
        for _, tc in sorted(_indexed_groups(msg, "message.tool_calls.").items()):
            name = tc.get("tool_call.function.name")
            if isinstance(name, str):
                calls.append(
                    ToolCall(name, as_text(tc.get("tool_call.function.arguments")), tc.get("tool_call.id"))
                )
    if calls:
        return calls
    for _, group in sorted(_indexed_groups(attrs, "gen_ai.completion.").items()):
        for _, tc in sorted(_indexed_groups(group, "tool_calls.").items()):
            if isinstance(tc.get("name"), str):
                calls.append(ToolCall(tc["name"], as_text(tc.get("arguments")), tc.get("id")))
    if calls:
        return calls
    out_msgs = _maybe_json(attrs.get("gen_ai.output.messages"))
    if isinstance(out_msgs, list):
        for m in out_msgs:
            for part in _list_at(m, "parts"):
                if isinstance(part, dict) and part.get("type") == "tool_call" and part.get("name"):
                    calls.append(ToolCall(part["name"], as_text(part.get("arguments")), part.get("id")))
            for tc in _list_at(m, "tool_calls"):
                fn = tc.get("function", tc) if isinstance(tc, dict) else {}
                if isinstance(fn, dict) and fn.get("name"):
                    calls.append(ToolCall(fn["name"], as_text(fn.get("arguments")), tc.get("id")))
    if calls:
        return calls
    return _any_agent_calls(attrs) or []


def _any_agent_calls(attrs: dict[str, Any]) -> list[ToolCall] | None:
    """any-agent's ``gen_ai.output`` (type json): ``[{"tool.name": ..., "tool.args": ...}]`` → calls; else None."""
    raw = attrs.get("gen_ai.output", attrs.get("genai.output"))
    if not isinstance(raw, str) or not raw.startswith("[{"):
        return None
    parsed = _maybe_json(raw)
    if not isinstance(parsed, list) or not parsed:
        return None
    calls = [
        ToolCall(item["tool.name"], as_text(item.get("tool.args")), item.get("tool.call.id"))
        for item in parsed
        if isinstance(item, dict) and isinstance(item.get("tool.name"), str)
    ]
    return calls if len(calls) == len(parsed) else None


def _parts_text(raw: Any) -> str | None:
    """Text parts of GenAI parts-based ``gen_ai.output.messages`` joined; None when there are none."""
    msgs = _maybe_json(raw)
    texts: list[str] = []
    if isinstance(msgs, list):
        for m in msgs:
            for part in _list_at(m, "parts"):
                if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("content"), str):
                    texts.append(part["content"])
            if isinstance(m, dict) and isinstance(m.get("content"), str):
                texts.append(m["content"])
    return "\n".join(texts) if texts else None


def _output_text(attrs: dict[str, Any]) -> str | None:
    for _, msg in sorted(_indexed_groups(attrs, "llm.output_messages.").items()):
        c = msg.get("message.content")
        if isinstance(c, str):
            return c
        parts = [
            v
            for k, v in sorted(msg.items())
            if k.startswith("message.contents.") and k.endswith("message_content.text") and isinstance(v, str)
        ]
        if parts:
            return "\n".join(parts)
    text = _parts_text(attrs.get("gen_ai.output.messages"))
    if text is not None:
        return text
    v = _first_str(attrs, ("gen_ai.completion.0.content", "output.value", "langfuse.observation.output"))
    if v is not None:
        return v
    if _any_agent_calls(attrs) is None:
        return _first_str(attrs, ("gen_ai.output", "genai.output"))
    return None


def output_recorded(attrs: dict[str, Any]) -> bool:
    """Did the LLM span record its output at all? (Missing content is unknown, not an empty answer.)"""
    for k in attrs:
        if k in _OUTPUT_KEYS or k.startswith("llm.output_messages."):
            return True
    return False


@dataclass(slots=True)
class ToolMessage:
    """A tool result handed back to the model as an input message (no tool span need exist)."""

    call_id: str | None
    name: str | None
    content: str


def _genai_input_messages(raw: Any) -> tuple[list[ToolMessage], dict[str, ToolCall]]:
    msgs = _maybe_json(raw)
    results: list[ToolMessage] = []
    calls: dict[str, ToolCall] = {}
    for m in msgs if isinstance(msgs, list) else []:
        if not isinstance(m, dict):
            continue
        for part in _list_at(m, "parts"):
            if not isinstance(part, dict):
                continue
            if part.get("type") == "tool_call_response":
                content = as_text(part.get("response", part.get("result")))
                if content is not None:
                    pid = part.get("id")
                    results.append(ToolMessage(pid if isinstance(pid, str) else None, None, content))
            elif part.get("type") == "tool_call" and isinstance(part.get("id"), str) and part.get("name"):
                calls[part["id"]] = ToolCall(str(part["name"]), as_text(part.get("arguments")), part["id"])
        if m.get("role") == "tool" and isinstance(m.get("content"), str):
            cid = m.get("tool_call_id")
            results.append(ToolMessage(cid if isinstance(cid, str) else None, _first_str(m, ("name",)), m["content"]))
    return results, calls


def tool_messages_in_input(attrs: dict[str, Any]) -> tuple[list[ToolMessage], dict[str, ToolCall]]:
    """Tool results among an LLM call's input messages, and the calls (by id) those messages answer.

    OpenInference flattens them as ``llm.input_messages.N.message.{role,content,tool_call_id,name}``
    (the requesting assistant turn's ``tool_calls`` alongside); GenAI puts ``tool_call_response``
    parts in ``gen_ai.input.messages``.
    """
    results: list[ToolMessage] = []
    calls: dict[str, ToolCall] = {}
    for _, msg in sorted(_indexed_groups(attrs, "llm.input_messages.").items()):
        role = msg.get("message.role")
        if role == "tool":
            content = msg.get("message.content")
            if isinstance(content, str):
                cid = msg.get("message.tool_call_id")
                results.append(
                    ToolMessage(cid if isinstance(cid, str) else None, _first_str(msg, ("message.name",)), content)
                )
        elif role == "assistant":
            for _, tc in sorted(_indexed_groups(msg, "message.tool_calls.").items()):
                cid, name = tc.get("tool_call.id"), tc.get("tool_call.function.name")
                if isinstance(cid, str) and isinstance(name, str):
                    calls[cid] = ToolCall(name, as_text(tc.get("tool_call.function.arguments")), cid)
    if "gen_ai.input.messages" in attrs:
        more, more_calls = _genai_input_messages(attrs["gen_ai.input.messages"])
        results.extend(more)
        calls.update(more_calls)
    return results, calls


def llm_output_text(attrs: dict[str, Any]) -> str | None:
    """An LLM span's output text, as ``normalize`` fills ``output_text`` (public for callers that need only it)."""
    return _output_text(attrs)


def normalize(span: Span) -> NormalizedSpan:
    """Compute the full normalized view of one canonical span."""
    from engine.traces.span import iso_to_ns

    attrs = span.get("attributes") or {}
    status = span.get("status") or {}
    cat = category_of(attrs, span.get("name") or "")
    start = iso_to_ns(span.get("start_time") or "") or 0
    end = iso_to_ns(span.get("end_time") or "") or start
    n = NormalizedSpan(
        trace_id=span.get("trace_id", ""),
        span_id=span.get("span_id", ""),
        parent_span_id=span.get("parent_span_id", "") or "",
        name=span.get("name", ""),
        category=cat,
        start_ns=start,
        end_ns=end,
        attributes=attrs,
    )
    n.model = _first_str(attrs, MODEL_KEYS)
    n.provider = _first_str(attrs, PROVIDER_KEYS)
    n.input_tokens = _first_int(attrs, INPUT_TOKEN_KEYS)
    n.output_tokens = _first_int(attrs, OUTPUT_TOKEN_KEYS)
    if n.input_tokens is None and n.output_tokens is None and LANGFUSE_USAGE in attrs:
        n.input_tokens, n.output_tokens = langfuse_usage(attrs)
    n.agent_name = _first_str(attrs, AGENT_NAME_KEYS) or (n.name if cat == "agent" else None)
    if cat == "tool":
        n.tool_name = _first_str(attrs, TOOL_NAME_KEYS) or tool_name_from_span_name(n.name)
        n.tool_arguments = as_text(_first_present(attrs, TOOL_ARGS_KEYS))
        n.tool_result = as_text(_first_present(attrs, TOOL_RESULT_KEYS))
    if cat == "llm":
        n.tools_offered = _offered_tools(attrs)
        n.tool_calls_requested = _requested_calls(attrs)
        n.output_text = _output_text(attrs)
        n.output_recorded = n.output_text is not None or output_recorded(attrs)
        fr = _first_present(attrs, FINISH_REASON_KEYS)
        if isinstance(fr, str) and fr.startswith("["):
            fr = _maybe_json(fr)
        if isinstance(fr, list) and fr:
            fr = fr[0]
        n.finish_reason = fr if isinstance(fr, str) else None
    level = attrs.get("langfuse.observation.level")
    n.is_error = (
        status.get("code") == STATUS_ERROR
        or bool(attrs.get("error.type"))
        or (isinstance(level, str) and level.upper() == "ERROR")
    )
    if n.is_error:
        n.error_message = status.get("message") or _first_str(
            attrs, ("exception.message", "error.message", "langfuse.observation.status_message", "error.type")
        )
        if n.error_message and TRACEBACK_HEADER in n.error_message:
            # LangChain's status is repr(exc) glued to its traceback: the exception's own message says it better
            n.error_message = _first_str(attrs, ("exception.message", "error.message")) or n.error_message
        n.error_type = _first_str(attrs, ("exception.type", "error.type"))
        n.error_tool = _first_str(attrs, ERROR_TOOL_KEYS)
    n.test_nodeid = attrs.get(conventions.TEST_NODEID)
    n.test_outcome = attrs.get(conventions.TEST_OUTCOME)
    n.test_worker = attrs.get(conventions.TEST_WORKER)
    n.run_id = attrs.get(conventions.RUN_ID)
    return n
