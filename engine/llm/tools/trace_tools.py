"""The trace store's query tools (halo-engine's names and arguments), run off the event loop.

The store is not thread-safe, so calls go one at a time through ``env.run_blocking`` (a worker
thread behind a lock); the event loop keeps serving other agents' HTTP meanwhile.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from engine.llm.tools.base import Scope, ToolCallContext, ToolError
from engine.traces import query_models as Q

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


class StoreTool:
    """One store method as a tool; unknown ids and bad regexes come back as errors the model can fix."""

    scope: Scope = "all"

    def __init__(self, name: str) -> None:
        spec = Q.TOOLS[name]
        self.name = name
        self.description = DESCRIPTIONS.get(name, spec.description)
        self.arguments: type[BaseModel] = spec.arguments

    async def run(self, ctx: ToolCallContext, args: Any) -> Any:
        store = ctx.env.store
        if store is None:
            raise ToolError("the trace store is unavailable in this run")
        fields = {k: getattr(args, k) for k in type(args).model_fields}

        def call() -> Any:
            try:
                return getattr(store, self.name)(**fields)
            except KeyError as exc:
                msg = exc.args[0] if exc.args else exc
                raise ToolError(f"unknown id: {msg}. Use ids from get_dataset_overview, query_traces or a "
                                "search result; never guess an id.") from None
            except ValueError as exc:
                raise ToolError(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from None

        assert ctx.env.run_blocking is not None
        return await ctx.env.run_blocking(call)


def store_tools() -> list[StoreTool]:
    return [StoreTool(name) for name in Q.TOOLS]
