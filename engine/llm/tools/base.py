"""The tool interface of the engine and the provider interface others plug tools in through.

A ``Tool`` has a name, a description, a pydantic arguments model and an async ``run``. Who
may call it is its ``scope``: every agent, only the root, or only agents that may still
delegate. A ``ToolProvider`` (the sandbox's ``run_code``, the code and git tools) contributes
tools for a run from a ``ToolEnvironment``, or raises ``ToolUnavailable`` with the one line
the user sees; providers are checked against the Protocol when registered, never discovered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import orjson
from pydantic import BaseModel, ValidationError

Scope = Literal["all", "root", "delegating"]


class ToolUnavailable(Exception):
    """A provider cannot offer its tools in this run; the message is the one-line notice."""


class ToolError(Exception):
    """A tool call the model can fix: the message goes back to it as the tool result."""


@dataclass
class AgentInfo:
    """Who is calling: the agent's id, depth and whether it is the root."""

    agent_id: str
    depth: int
    is_root: bool


@dataclass
class ToolEnvironment:
    """What providers and tools may use during a run.

    ``complete_text(system, user, max_tokens)`` asks the synthesis model under the run's
    budget (and cache) and returns its text; ``llm_query`` in the sandbox goes through it.
    """

    store: Any
    settings: Any
    findings: Any = None
    tests_file: Path | None = None
    out_dir: Path | None = None
    paths: Sequence[Path] = ()
    complete_text: Callable[[str, str, int], Awaitable[str]] | None = None
    run_blocking: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolCallContext:
    """Per call: the caller and the run's environment; ``context_item`` reads the caller's own history."""

    agent: AgentInfo
    env: ToolEnvironment
    context_item: Callable[[str], str | None] = lambda _id: None
    spawn: Callable[[str], Awaitable[dict[str, Any]]] | None = None


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str
    arguments: type[BaseModel]
    scope: Scope

    async def run(self, ctx: ToolCallContext, args: Any) -> Any: ...


@runtime_checkable
class ToolProvider(Protocol):
    """Contributes tools to a run. ``close`` releases what ``tools`` started (a sandbox process)."""

    name: str

    def tools(self, env: ToolEnvironment) -> list[Tool]: ...

    async def close(self) -> None: ...


def check_tool(obj: object) -> Tool:
    if not isinstance(obj, Tool) or not isinstance(getattr(obj, "name", None), str):
        raise TypeError(f"{type(obj).__name__} is not a Tool (needs name, description, arguments, scope, run)")
    if not (isinstance(obj.arguments, type) and issubclass(obj.arguments, BaseModel)):
        raise TypeError(f"tool {obj.name}: arguments must be a pydantic model class")
    return obj


def check_provider(obj: object) -> ToolProvider:
    if not isinstance(obj, ToolProvider) or not isinstance(getattr(obj, "name", None), str):
        raise TypeError(f"{type(obj).__name__} is not a ToolProvider (needs name, tools(env), close())")
    return obj


def schema_of(tool: Tool) -> dict[str, Any]:
    """The Chat Completions function definition of ``tool``."""
    params = tool.arguments.model_json_schema()
    params.pop("title", None)
    return {"type": "function", "function": {"name": tool.name, "description": tool.description, "parameters": params}}


def validation_message(tool_name: str, exc: ValidationError) -> str:
    """A short, actionable line per bad field (never the whole pydantic dump)."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ())) or "arguments"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = f" (+{len(exc.errors()) - 5} more)" if len(exc.errors()) > 5 else ""
    return f"invalid arguments for {tool_name}: {'; '.join(parts)}{more}. Fix them and call again."


def to_text(result: Any) -> str:
    """A tool result as the text the model reads (JSON for models and structures)."""
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return orjson.dumps(result, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def cap_text(text: str, limit: int, hint: str = "narrow the request (filters, limit, span_ids, a regex)") -> str:
    """``text`` within ``limit`` bytes (UTF-8), with a marker saying what was cut and what to do."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    marker = f"\n[truncated: {len(data):,} bytes, showing {limit - 200:,}; {hint}]"
    return data[: max(0, limit - 200)].decode("utf-8", errors="ignore") + marker


class ToolRegistry:
    """The run's tools by name; ``for_agent`` filters by scope and depth."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.tools: dict[str, Tool] = {}

    def add(self, tool: object) -> None:
        t = check_tool(tool)
        if t.name in self.tools:
            raise ValueError(f"tool {t.name} registered twice")
        self.tools[t.name] = t

    def allowed(self, tool: Tool, agent: AgentInfo) -> bool:
        if tool.scope == "root":
            return agent.is_root
        if tool.scope == "delegating":
            return agent.depth < self.max_depth
        return True

    def for_agent(self, agent: AgentInfo) -> list[Tool]:
        return [t for t in self.tools.values() if self.allowed(t, agent)]

    def get(self, name: str, agent: AgentInfo) -> Tool | None:
        t = self.tools.get(name)
        return t if t is not None and self.allowed(t, agent) else None
