"""``run_code``: Python over the traces in the locked-down Deno + Pyodide sandbox, with ``llm_query`` inside.

The provider starts one warm sandbox per engine run on the first call and closes it at the end.
Each call gets the rollup row of every trace (written once per run) plus the normalized spans of
the traces it selects, by ids and/or by a store filter (``query_traces``' model, resolved to ids on
the host, the same cap as ids); ``llm_query(prompt, text)`` from sandboxed code goes to the synthesis model
through the run's budget and cache, capped per call and per run. When Deno or Pyodide cannot be
had the tool is left out with one notice, and that verdict holds for the whole run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from engine.llm.tools.base import (
    Scope,
    ToolCallContext,
    ToolEnvironment,
    ToolError,
    ToolUnavailable,
    cap_text,
)
from engine.traces.query_models import TraceFilters

LLM_QUERY_MAX_TOKENS = 512
MAX_SELECTED_TRACES = 500  # traces whose spans one call may hold, whether named by id or by a filter
LLM_QUERY_SYSTEM = "Answer the request about the given text briefly and precisely. Plain text only."


class RunCodeArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description=(
        "Python 3 (standard library only; sqlite3 included). `import traces`: traces.rollups() is one dict per "
        "trace (trace_id, span_count, duration_ms, has_errors, error_span_count, tool_names, agent_names, "
        "model_names, categories, total_input_tokens, total_output_tokens, test_nodeid, test_outcome); "
        "traces.spans() the normalized spans of the selected traces (`trace_ids` and/or `filters`); traces.sql() an in-memory SQLite db with tables "
        "`traces` and `spans`; traces.meta() counts. llm_query(prompt, text) -> str asks a cheap model. "
        "Print what you want to see; stdout is capped."), max_length=100_000)
    trace_ids: list[str] = Field(default_factory=list, max_length=MAX_SELECTED_TRACES,
                                 description="traces whose normalized spans traces.spans() should hold")
    filters: TraceFilters | None = Field(None, description=(
        "select traces for traces.spans() by a store filter, as for query_traces (e.g. {\"has_errors\": true, "
        f"\"tool_names\": [\"book\"]}}); added to trace_ids, the first {MAX_SELECTED_TRACES} matches in store order"))
    timeout_s: float = Field(30.0, gt=0, le=120, description="wall-clock limit of this call")


class RunCodeTool:
    name = "run_code"
    description = (
        "Run Python in an offline sandbox to compute over ALL traces (counts, joins, distributions, grouping "
        "error messages) instead of reading them one by one. No network, files or environment."
    )
    arguments: type[BaseModel] = RunCodeArguments
    scope: Scope = "all"

    def __init__(self, provider: RunCodeProvider) -> None:
        self.provider = provider

    async def run(self, ctx: ToolCallContext, args: RunCodeArguments) -> Any:
        from engine.sandbox import SandboxUnavailable

        if self.provider.unavailable is not None:
            raise ToolError(self.provider.unavailable)
        try:
            return await self._run(ctx, args)
        except SandboxUnavailable as exc:  # every later call would wait for the same failed boot
            self.provider.unavailable = f"{exc}; run_code is off for the rest of this run"
            await self.provider.close()
            raise ToolError(self.provider.unavailable) from None

    async def _run(self, ctx: ToolCallContext, args: RunCodeArguments) -> Any:
        box = await self.provider.sandbox()
        env = ctx.env
        run_blocking = env.run_blocking
        if run_blocking is None:
            raise ToolError("run_code needs the engine's worker thread")

        async def llm_query(prompt: str, text: str) -> str:
            if env.complete_text is None:
                raise RuntimeError("no synthesis model in this run")
            # capped like synthesize_traces: the budget is checked before a request, so one huge text could
            # overshoot it by millions of tokens
            user = cap_text(f"{prompt}\n\n---\n{text}", env.settings.synthesis_max_bytes, "text cut for llm_query")
            return await env.complete_text(LLM_QUERY_SYSTEM, user, LLM_QUERY_MAX_TOKENS)

        store = env.store

        def select_and_write() -> Selection:
            try:
                chosen = select_traces(store, args.trace_ids, args.filters) if store is not None else Selection()
            except ValueError as exc:  # a bad regex, an unknown category: the model can fix it
                raise ToolError(f"filters: {str(exc).splitlines()[0][:300]}") from None
            self.provider.write_data(env, box.data_path, chosen.trace_ids)
            return chosen

        async with self.provider.data_lock:  # one data file: a parallel call must not swap it mid-call
            chosen = await run_blocking(select_and_write)
            result = await box.run(args.code, with_data=store is not None, llm_query=llm_query,
                                   timeout_s=args.timeout_s)
        out = result.to_dict()
        if args.filters is not None or chosen.note:
            out["selected"] = chosen.to_dict()
        return out


@runtime_checkable
class FilterableStore(Protocol):
    """What selecting by filter needs of a store: the ids passing a ``TraceFilters``, and every id."""

    trace_ids: Any

    def match_trace_ids(self, filters: TraceFilters | None = None) -> list[str]: ...


@dataclass
class Selection:
    """The traces a call holds the spans of, and what was left out."""

    trace_ids: list[str] = field(default_factory=list)
    matched: int = 0
    unknown: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"traces": len(self.trace_ids), "matched_by_filters": self.matched}
        if self.unknown:
            out["unknown_ids"] = self.unknown
        if self.note:
            out["note"] = self.note
        return out


def select_traces(store: Any, trace_ids: list[str], filters: TraceFilters | None,
                  cap: int = MAX_SELECTED_TRACES) -> Selection:
    """``trace_ids`` then the traces ``filters`` match, deduplicated and capped at ``cap`` (host side).

    Raises ``ValueError`` for a filter the store refuses (a bad regex, an unknown category)."""
    if not isinstance(store, FilterableStore):
        raise TypeError(f"{type(store).__name__} cannot select traces by filter (needs match_trace_ids)")
    known = set(store.trace_ids)
    ids = list(dict.fromkeys(t for t in trace_ids if t in known))
    unknown = len(set(trace_ids) - known)
    matched = store.match_trace_ids(filters) if filters is not None else []
    chosen = list(dict.fromkeys([*ids, *matched]))
    note = ""
    if len(chosen) > cap:
        note = (f"{len(chosen)} traces selected, spans given for the first {cap}: narrow the filters (or use "
                "traces.rollups(), which covers every trace)")
        chosen = chosen[:cap]
    return Selection(trace_ids=chosen, matched=len(matched), unknown=unknown, note=note)


class RunCodeProvider:
    """One sandbox per engine run, started lazily; ``close`` kills it."""

    name = "run_code"

    def __init__(self, limits: Any = None) -> None:
        self.limits = limits
        self.unavailable: str | None = None  # why the sandbox could not start: remembered for the run
        self._box: Any = None
        self._rollups: list[dict[str, Any]] | None = None
        self._written_for: tuple[str, ...] | None = None  # the selection the data file holds now
        self.data_lock = asyncio.Lock()

    def tools(self, env: ToolEnvironment) -> list[Any]:
        from engine.sandbox import SandboxUnavailable, provision

        if env.store is not None and not isinstance(env.store, FilterableStore):
            raise ToolUnavailable(f"{type(env.store).__name__} cannot select traces (needs trace_ids and "
                                  "match_trace_ids)")
        try:
            provision.require()
        except SandboxUnavailable as exc:
            raise ToolUnavailable(str(exc).removeprefix("run_code unavailable: ")) from None
        return [RunCodeTool(self)]

    async def sandbox(self) -> Any:
        if self._box is None:
            from engine.sandbox import Sandbox

            # off the event loop: it verifies Pyodide's hashes and may build the memory snapshot (seconds)
            self._box = await asyncio.to_thread(Sandbox, self.limits)
        return self._box

    def write_data(self, env: ToolEnvironment, path: Any, trace_ids: list[str]) -> None:
        from engine.sandbox import write_data
        from engine.traces.rows import rollup_rows, span_rows

        if env.store is None or tuple(trace_ids) == self._written_for:
            return
        if self._rollups is None:
            self._rollups = list(rollup_rows(env.store))
        write_data(path, self._rollups, span_rows(env.store, trace_ids))
        self._written_for = tuple(trace_ids)

    async def close(self) -> None:
        if self._box is not None:
            await self._box.close()
            self._box = None
            self._written_for = None
