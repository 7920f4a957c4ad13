"""The trace store's query tools (halo-engine's names and arguments), run off the event loop.

The store is checked against ``QueryStore`` when the tools are built and each tool holds its bound
method from then on; a store lacking one is refused at that point with the names it lacks. The
store is not thread-safe, so calls go one at a time through ``env.run_blocking`` (a worker thread
behind a lock); the event loop keeps serving other agents' HTTP meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from engine.llm.tools.base import Scope, ToolCallContext, ToolError
from engine.traces import query_models

DESCRIPTIONS = {
    "get_dataset_overview": "Dataset rollup: counts, time bounds, facets (models, agents, tools, categories, test "
    "outcomes), token totals, `raw_jsonl_bytes`, `sample_trace_ids` (real ids to pass to other tools) and the top "
    "error signatures. Call this first. `filters.regex_pattern` scans raw spans: narrow with indexed filters first.",
    "query_traces": "Paginated trace summaries from the index (no file reads); each has `raw_jsonl_bytes`, "
    "`test_nodeid`, `test_outcome`. Filter by has_errors, tool_names, categories, test_outcome, agent_names...",
    "count_traces": "Count traces matching `filters` (cheap). Use it to size a set before reading traces.",
    "view_trace": "All spans of one trace (attribute values capped ~4KB). Too large → `oversized` says what to "
    "call instead (render_trace, search_trace + view_spans).",
    "view_spans": "Named spans of a trace (up to 200) with a ~16KB per-value cap.",
    "search_trace": "Regex (Python) over the raw JSON of each span of one trace: match records with context and "
    "span ids, exact `match_count`, `has_more`.",
    "search_span": "Regex inside one span's raw JSON, for spans too large to view whole.",
    "render_trace": "One trace as a compact indented tree: names, categories, durations, status, tool "
    "arguments/results, errors, test outcome. Cheapest way to read a whole trace.",
}


@runtime_checkable
class QueryStore(Protocol):
    """What the store tools need of a store: one method per tool of ``engine.traces.query_models.TOOLS``."""

    def get_dataset_overview(self, filters: Any = None) -> Any: ...
    def query_traces(self, filters: Any = None, limit: int = 50, offset: int = 0) -> Any: ...
    def count_traces(self, filters: Any = None) -> Any: ...
    def view_trace(self, trace_id: str) -> Any: ...
    def view_spans(self, trace_id: str, span_ids: list[str]) -> Any: ...
    def search_trace(self, *args: Any, **kwargs: Any) -> Any: ...
    def search_span(self, *args: Any, **kwargs: Any) -> Any: ...
    def render_trace(self, trace_id: str, budget: int | None = None) -> Any: ...


def bind_store(store: object) -> dict[str, Callable[..., Any]]:
    """The store's method for each tool name; ``TypeError`` naming what a store that is not a ``QueryStore`` lacks."""
    if not isinstance(store, QueryStore):
        missing = [n for n in query_models.TOOLS if not callable(getattr(store, n, None))]
        raise TypeError(f"{type(store).__name__} is not a trace store: it lacks {', '.join(missing)}")
    methods: dict[str, Callable[..., Any]] = {
        "get_dataset_overview": store.get_dataset_overview, "query_traces": store.query_traces,
        "count_traces": store.count_traces, "view_trace": store.view_trace, "view_spans": store.view_spans,
        "search_trace": store.search_trace, "search_span": store.search_span, "render_trace": store.render_trace,
    }
    if set(methods) != set(query_models.TOOLS):  # a tool added to the store's table must be bound here too
        raise TypeError(f"store tools out of step with query_models.TOOLS: {sorted(set(query_models.TOOLS) ^ set(methods))}")
    return methods


class StoreTool:
    """One store method as a tool; unknown ids and bad regexes come back as errors the model can fix.

    ``method`` is the store's bound method (None: no store in this run, every call says so)."""

    scope: Scope = "all"

    def __init__(self, name: str, method: Callable[..., Any] | None = None) -> None:
        spec = query_models.TOOLS[name]
        self.name = name
        self.description = DESCRIPTIONS.get(name, spec.description)
        self.arguments: type[BaseModel] = spec.arguments
        self.method = method

    async def run(self, ctx: ToolCallContext, args: Any) -> Any:
        method = self.method
        if method is None:
            raise ToolError("the trace store is unavailable in this run")
        fields = {k: getattr(args, k) for k in type(args).model_fields}

        def call() -> Any:
            try:
                return method(**fields)
            except KeyError as exc:
                msg = exc.args[0] if exc.args else exc
                raise ToolError(f"unknown id: {msg}. Use ids from get_dataset_overview, query_traces or a "
                                "search result; never guess an id.") from None
            except ValueError as exc:
                raise ToolError(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from None

        assert ctx.env.run_blocking is not None
        return await ctx.env.run_blocking(call)


def store_tools(store: object = None) -> list[StoreTool]:
    """The store's tools, bound to ``store`` (checked here; None: tools that say the store is unavailable)."""
    methods = bind_store(store) if store is not None else {}
    return [StoreTool(name, methods.get(name)) for name in query_models.TOOLS]
