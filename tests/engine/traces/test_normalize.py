"""One normalized view over every dialect: OpenInference, OTel GenAI (old and new), Traceloop, Langfuse.

Attribute sets follow each convention's published keys; the real-corpus checks (any-agent's
GenAI and OpenInference spans, Agents SDK, tau-bench) live with the format tests.
"""

from __future__ import annotations

import json

from engine.traces.normalize import normalize, rollup
from engine.traces.span import STATUS_ERROR, make_span


def _span(attrs: dict, name: str = "span", status: str = "STATUS_CODE_UNSET", message: str = "") -> dict:
    return make_span(trace_id="ab" * 16, span_id="cd" * 8, name=name, start_ns=10**18, end_ns=10**18 + 5,
                     status_code=status, status_message=message, attributes=attrs)


WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


def test_openinference_llm() -> None:
    s = _span({
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o",
        "llm.provider": "openai",
        "llm.token_count.prompt": 30,
        "llm.token_count.completion": 4,
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "weather?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"city": "Oslo"}',
        "llm.output_messages.0.message.tool_calls.1.tool_call.function.name": "get_time",
        "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {"name": "get_weather",
                                                                                     "parameters": WEATHER_SCHEMA}}),
    }, name="ChatCompletion")
    n = normalize(s)
    assert (n.category, n.model, n.provider, n.input_tokens, n.output_tokens) == ("llm", "gpt-4o", "openai", 30, 4)
    assert [(c.name, c.arguments, c.call_id) for c in n.tool_calls_requested] == [
        ("get_weather", '{"city": "Oslo"}', "call_1"), ("get_time", None, None)]
    assert n.tools_offered == {"get_weather": WEATHER_SCHEMA}
    assert rollup(s) == ("llm", "gpt-4o", 30, 4, None, None, False)


def test_openinference_tool_with_empty_result() -> None:
    s = _span({"openinference.span.kind": "TOOL", "tool.name": "write_file", "tool.parameters": '{"text": "x"}',
               "output.value": ""})
    n = normalize(s)
    assert (n.category, n.tool_name, n.tool_arguments, n.tool_result) == ("tool", "write_file", '{"text": "x"}', "")


def test_genai_new_parts_based() -> None:
    s = _span({
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet",
        "gen_ai.response.model": "claude-sonnet-4",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.response.finish_reasons": ["tool_call"],
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "weather?"}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "text", "content": "Let me check."},
            {"type": "tool_call", "id": "t1", "name": "get_weather", "arguments": {"city": "Oslo"}}],
            "finish_reason": "tool_call"}]),
        "gen_ai.tool.definitions": json.dumps([{"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA}]),
    }, name="chat claude-sonnet")
    n = normalize(s)
    assert (n.category, n.model, n.provider, n.input_tokens, n.output_tokens) == (
        "llm", "claude-sonnet-4", "anthropic", 100, 20)
    assert [(c.name, c.arguments, c.call_id) for c in n.tool_calls_requested] == [("get_weather", '{"city":"Oslo"}', "t1")]
    assert n.output_text == "Let me check." and n.finish_reason == "tool_call"
    assert n.tools_offered == {"get_weather": WEATHER_SCHEMA}


def test_genai_tool_execution_and_error() -> None:
    s = _span({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
               "gen_ai.tool.call.id": "t1", "gen_ai.tool.call.arguments": '{"city":"Oslo"}',
               "gen_ai.tool.call.result": "rain", "error.type": "TimeoutError"}, name="execute_tool get_weather")
    n = normalize(s)
    assert (n.category, n.tool_name, n.tool_arguments, n.tool_result) == ("tool", "get_weather", '{"city":"Oslo"}', "rain")
    assert (n.is_error, n.error_type, n.error_message) == (True, "TimeoutError", "TimeoutError")
    assert rollup(s)[4] == "get_weather" and rollup(s)[6] is False  # rollup's flag is the status code
    bare = normalize(_span({"gen_ai.operation.name": "execute_tool"}, name="execute_tool lookup"))
    assert bare.tool_name == "lookup"


def test_genai_old_and_traceloop_llm() -> None:
    s = _span({
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.prompt_tokens": 12,
        "gen_ai.usage.completion_tokens": 3,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "hi",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.finish_reason": "tool_calls",
        "gen_ai.completion.0.tool_calls.0.id": "c9",
        "gen_ai.completion.0.tool_calls.0.name": "lookup",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"q": 1}',
        "llm.request.functions.0.name": "lookup",
        "llm.request.functions.0.parameters": '{"type": "object"}',
    }, name="openai.chat")
    n = normalize(s)
    assert (n.category, n.model, n.provider, n.input_tokens, n.output_tokens) == ("llm", "gpt-4o-mini", "openai", 12, 3)
    assert [(c.name, c.arguments, c.call_id) for c in n.tool_calls_requested] == [("lookup", '{"q": 1}', "c9")]
    assert n.tools_offered == {"lookup": {"type": "object"}} and n.finish_reason == "tool_calls"


def test_traceloop_tool_and_workflow() -> None:
    tool = normalize(_span({"traceloop.span.kind": "tool", "traceloop.entity.name": "search",
                            "traceloop.entity.input": '{"args": ["x"]}', "traceloop.entity.output": '"found"'}))
    assert (tool.category, tool.tool_name, tool.tool_arguments, tool.tool_result) == (
        "tool", "search", '{"args": ["x"]}', '"found"')
    assert normalize(_span({"traceloop.span.kind": "workflow", "traceloop.entity.name": "plan"})).category == "chain"
    assert normalize(_span({"traceloop.span.kind": "agent", "traceloop.entity.name": "planner"})).category == "agent"


def test_langfuse_otel_attributes() -> None:
    s = _span({
        "langfuse.observation.type": "generation",
        "langfuse.observation.model.name": "gpt-4.1",
        "langfuse.observation.usage_details": '{"input": 50, "output": 7, "total": 57}',
        "langfuse.observation.output": "sure",
        "langfuse.observation.level": "ERROR",
        "langfuse.observation.status_message": "content filter",
    })
    n = normalize(s)
    assert (n.category, n.model, n.input_tokens, n.output_tokens, n.output_text) == ("llm", "gpt-4.1", 50, 7, "sure")
    assert (n.is_error, n.error_message) == (True, "content filter")
    assert rollup(s)[:4] == ("llm", "gpt-4.1", 50, 7)
    tool = normalize(_span({"langfuse.observation.type": "tool", "langfuse.observation.name": "fetch",
                            "langfuse.observation.input": '{"url": "u"}', "langfuse.observation.output": "ok"}))
    assert (tool.category, tool.tool_name, tool.tool_arguments, tool.tool_result) == ("tool", "fetch", '{"url": "u"}', "ok")


def test_agents_sdk_and_status_error() -> None:
    s = _span({"openai_agents.span_type": "function", "tool.name": "f", "input.value": "{}"},
              status=STATUS_ERROR, message="Error running tool")
    n = normalize(s)
    assert (n.category, n.tool_name, n.is_error, n.error_message) == ("tool", "f", True, "Error running tool")
    assert rollup(s) == ("tool", None, 0, 0, "f", None, True)
    assert normalize(_span({"openai_agents.span_type": "handoff"})).category == "handoff"
    agent = normalize(_span({"openai_agents.span_type": "agent", "gen_ai.agent.name": "Planner"}))
    assert (agent.category, agent.agent_name) == ("agent", "Planner")


def test_test_linkage_and_unknown() -> None:
    n = normalize(_span({"halo.test.nodeid": "t::a", "halo.test.outcome": "failed"}, name="misc"))
    assert (n.category, n.test_nodeid, n.test_outcome) == ("other", "t::a", "failed")


def test_genai_messages_with_non_list_parts_do_not_raise() -> None:
    """Trace content is untrusted: a message whose ``parts``/``tool_calls`` is not a list is skipped, the rest read."""
    from engine.traces.normalize import tool_messages_in_input

    bad = {"role": "user", "parts": 5, "tool_calls": 3}
    good_in = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "Error: boom"}]}
    results, _ = tool_messages_in_input({"gen_ai.input.messages": json.dumps([bad, good_in])})
    assert [(r.call_id, r.content) for r in results] == [("c1", "Error: boom")]
    good_out = {"role": "assistant", "parts": [{"type": "tool_call", "name": "lookup", "arguments": {}, "id": "c2"}]}
    span = _span({"gen_ai.operation.name": "chat", "gen_ai.output.messages": json.dumps([bad, good_out])}, "chat")
    assert [c.name for c in normalize(span).tool_calls_requested] == ["lookup"]
