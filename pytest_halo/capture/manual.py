"""Manual span API for custom harnesses without OTel: ``trace_agent``, ``trace_llm``, ``trace_tool``.

Each is a context manager and a decorator (sync or async). Spans nest through a
contextvar, carry OpenInference attributes the normalizer reads, and go through the same
recorder as SDK spans. With halo not capturing they cost almost nothing and never raise.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

import orjson

from engine.traces.span import STATUS_ERROR, STATUS_OK, STATUS_UNSET, ns_to_iso
from pytest_halo.capture import recorder as _recorder

SCOPE = "pytest-halo.manual"
_PARENT: contextvars.ContextVar[ManualSpan | None] = contextvars.ContextVar("halo_manual_span", default=None)


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    try:
        return orjson.dumps(v, default=str).decode()
    except TypeError:
        return str(v)


class ManualSpan:
    """A span under construction; the helpers set the attribute names the analysis reads."""

    def __init__(self, kind: str, name: str, attributes: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self.name = name
        self.attributes: dict[str, Any] = {"openinference.span.kind": kind}
        if attributes:
            self.attributes.update(attributes)
        self.trace_id = ""
        self.span_id = ""
        self.parent_span_id = ""
        self.status = STATUS_UNSET
        self.status_message = ""
        self._start = 0
        self._token: contextvars.Token[ManualSpan | None] | None = None
        self._n_calls = 0
        self._n_tools = 0

    # -- content helpers
    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def set_input(self, value: Any) -> None:
        self.attributes["input.value"] = _text(value)

    def set_output(self, value: Any) -> None:
        self.attributes["output.value"] = _text(value)
        if self.kind == "LLM" and isinstance(value, str):
            self.attributes["llm.output_messages.0.message.role"] = "assistant"
            self.attributes["llm.output_messages.0.message.content"] = value

    def set_usage(self, prompt_tokens: int | None = None, completion_tokens: int | None = None) -> None:
        if prompt_tokens is not None:
            self.attributes["llm.token_count.prompt"] = int(prompt_tokens)
        if completion_tokens is not None:
            self.attributes["llm.token_count.completion"] = int(completion_tokens)

    def offer_tool(self, name: str, parameters: dict[str, Any] | None = None, description: str = "") -> None:
        """Record a tool offered to the model (so "called a tool it wasn't offered" is detectable)."""
        schema = {"type": "function", "function": {"name": name, "description": description,
                                                   "parameters": parameters or {}}}
        self.attributes[f"llm.tools.{self._n_tools}.tool.json_schema"] = _text(schema)
        self._n_tools += 1

    def record_tool_call(self, name: str, arguments: Any = None, call_id: str = "") -> None:
        """Record a tool call the model requested in this LLM response."""
        p = f"llm.output_messages.0.message.tool_calls.{self._n_calls}.tool_call."
        self.attributes["llm.output_messages.0.message.role"] = "assistant"
        self.attributes[p + "function.name"] = name
        self.attributes[p + "function.arguments"] = _text(arguments if arguments is not None else {})
        if call_id:
            self.attributes[p + "id"] = call_id
        self._n_calls += 1

    def set_error(self, message: str, exc_type: str = "Error") -> None:
        self.status = STATUS_ERROR
        self.status_message = message
        self.attributes.setdefault("exception.type", exc_type)
        self.attributes.setdefault("exception.message", message)

    # -- lifecycle
    def __enter__(self) -> ManualSpan:
        parent = _PARENT.get()
        self.trace_id = parent.trace_id if parent else os.urandom(16).hex()
        self.parent_span_id = parent.span_id if parent else ""
        self.span_id = os.urandom(8).hex()
        self._start = time.time_ns()
        self._token = _PARENT.set(self)
        rec = _recorder.current()
        if rec is not None:
            rec.span_started(self.trace_id)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        end = time.time_ns()
        if self._token is not None:
            _PARENT.reset(self._token)
            self._token = None
        if exc is not None:
            self.status = STATUS_ERROR
            self.status_message = str(exc)
            self.attributes["exception.type"] = exc_type.__name__
            self.attributes["exception.message"] = str(exc)
            self.attributes["exception.stacktrace"] = "".join(traceback.format_exception(exc_type, exc, tb))
        elif self.status == STATUS_UNSET:
            self.status = STATUS_OK
        rec = _recorder.current()
        if rec is None:
            return
        rec.emit({
            "trace_id": self.trace_id, "span_id": self.span_id, "parent_span_id": self.parent_span_id,
            "trace_state": "", "name": self.name,
            "kind": "SPAN_KIND_CLIENT" if self.kind == "LLM" else "SPAN_KIND_INTERNAL",
            "start_time": ns_to_iso(self._start), "end_time": ns_to_iso(end),
            "status": {"code": self.status, "message": self.status_message},
            "resource": {"attributes": {}}, "scope": {"name": SCOPE, "version": ""},
            "attributes": dict(self.attributes),
        })


class _Tracer:
    """Context-manager factory that is also a decorator (bare or called, sync or async)."""

    def __init__(self, kind: str, name: str | None, attributes: dict[str, Any]) -> None:
        self.kind = kind
        self.name = name
        self.attributes = attributes

    def _span(self, default_name: str) -> ManualSpan:
        return ManualSpan(self.kind, self.name or default_name, self.attributes)

    def __enter__(self) -> ManualSpan:
        self._active = self._span(self.kind.lower())
        return self._active.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._active.__exit__(*exc)

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        name = self.name or fn.__name__
        kind, attrs = self.kind, self.attributes

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ManualSpan:
            span = ManualSpan(kind, name, attrs)
            if kind == "TOOL":
                span.set_input(kwargs if kwargs or not args else (args[0] if len(args) == 1 else list(args)))
            return span

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                with start(args, kwargs) as span:
                    result = await fn(*args, **kwargs)
                    if kind == "TOOL":
                        span.set_output(result)
                    return result
            return awrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with start(args, kwargs) as span:
                result = fn(*args, **kwargs)
                if kind == "TOOL":
                    span.set_output(result)
                return result
        return wrapper


def _factory(kind: str, name: Any, attributes: dict[str, Any]) -> Any:
    if callable(name):  # bare decorator: @trace_tool
        return _Tracer(kind, None, attributes)(name)
    return _Tracer(kind, name, attributes)


def trace_agent(name: Any = None, **attributes: Any) -> Any:
    """Agent span: ``with trace_agent("support") as span:`` or ``@trace_agent``."""
    tracer = _factory("AGENT", name, attributes)
    if isinstance(tracer, _Tracer) and isinstance(name, str):
        tracer.attributes = {"gen_ai.agent.name": name, **attributes}
    return tracer


def trace_llm(name: Any = None, *, model: str | None = None, **attributes: Any) -> Any:
    """LLM call span; ``model`` becomes ``llm.model_name``."""
    if model:
        attributes = {"llm.model_name": model, **attributes}
    return _factory("LLM", name, attributes)


def trace_tool(name: Any = None, **attributes: Any) -> Any:
    """Tool span; as a decorator it records arguments and result, and errors from exceptions."""
    tracer = _factory("TOOL", name, attributes)
    if isinstance(tracer, _Tracer) and isinstance(name, str):
        tracer.attributes = {"tool.name": name, **attributes}
    return tracer
