"""A deterministic stand-in for an LLM: an ``agents.models.interface.Model`` driven by a policy.

It does what a real model adapter does for tracing — opens a ``response_span`` and puts the
``Response`` (output items, offered tools, instructions) and the input on it — so traces
look like those of ``OpenAIResponsesModel`` without any network or API key.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents import FunctionTool, Usage
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.tracing import response_span
from openai.types.responses import (
    FunctionTool as ResponsesFunctionTool,
)
from openai.types.responses import (
    Response,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputRefusal,
    ResponseOutputText,
)

_ids = itertools.count(1)


@dataclass
class Call:
    """The model asks for one tool call."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class Say:
    """The model answers with text (or refuses, when ``refusal``)."""

    text: str
    refusal: bool = False


Action = Call | Say
Policy = Callable[[list[dict[str, Any]], list[str]], Action]


def as_items(input: str | list[Any]) -> list[dict[str, Any]]:
    """Normalise the SDK's input (a string or Responses input items) to plain dicts."""
    if isinstance(input, str):
        return [{"role": "user", "content": input}]
    out = []
    for item in input:
        dump = getattr(item, "model_dump", None)
        out.append(dump(exclude_none=True) if callable(dump) else dict(item))
    return out


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedModel(Model):
    """Plays a ``policy(items, offered_tool_names) -> Call | Say`` as if it were an LLM.

    Handoffs are offered as tools named ``transfer_to_<agent>``, as the Responses API sees them.
    """

    def __init__(self, policy: Policy, name: str = "scripted-support-1") -> None:
        self.policy = policy
        self.name = name

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
        **_: Any,
    ) -> ModelResponse:
        offered = [t for t in tools if isinstance(t, FunctionTool)]
        with response_span(disabled=tracing.is_disabled()) as span:
            items = as_items(input)
            action = self.policy(items, [t.name for t in offered] + [h.tool_name for h in handoffs])
            n = next(_ids)
            if isinstance(action, Call):
                output: list[Any] = [ResponseFunctionToolCall(
                    type="function_call", id=f"fc_{n}", call_id=f"call_{n}", name=action.name,
                    arguments=json.dumps(action.arguments, sort_keys=True), status="completed")]
            else:
                part: Any = (ResponseOutputRefusal(type="refusal", refusal=action.text) if action.refusal
                             else ResponseOutputText(type="output_text", text=action.text, annotations=[]))
                output = [ResponseOutputMessage(type="message", id=f"msg_{n}", role="assistant",
                                                status="completed", content=[part])]
            response = Response(
                id=f"resp_{n}", created_at=time.time(), model=self.name, object="response", output=output,
                parallel_tool_calls=False, tool_choice="auto", status="completed",
                instructions=system_instructions,
                tools=[ResponsesFunctionTool(type="function", name=t.name, description=t.description,
                                             parameters=t.params_json_schema, strict=t.strict_json_schema)
                       for t in offered]
                + [ResponsesFunctionTool(type="function", name=h.tool_name, description=h.tool_description,
                                         parameters=h.input_json_schema, strict=h.strict_json_schema)
                   for h in handoffs],
            )
            prompt_tokens = _tokens(json.dumps(items, default=str)) + _tokens(system_instructions or "")
            completion_tokens = _tokens(json.dumps([o.model_dump() for o in output], default=str))
            span.span_data.response = response
            span.span_data.input = input
            span.span_data.usage = {"input_tokens": prompt_tokens, "output_tokens": completion_tokens}
        usage = Usage(requests=1, input_tokens=prompt_tokens, output_tokens=completion_tokens,
                      total_tokens=prompt_tokens + completion_tokens)
        return ModelResponse(output=output, usage=usage, response_id=response.id)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ScriptedModel does not stream")
