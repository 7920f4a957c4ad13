"""Arguments and results of the store's query tools (pydantic: they become LLM tool schemas).

Names follow halo-engine 0.3.5's ``trace_query_models`` so an agent prompt written for it
keeps working; we add facets (tool names, categories, test linkage) and, on every result
that can be cut, a ``note`` saying what was left out and what to ask next. Models live at
the boundary only — never one per span in a hot loop.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TraceFilters(_Model):
    """ANDed predicates; all but ``regex_pattern`` are answered from the index alone.

    ``has_errors`` is OTel status semantics (a span with ``STATUS_CODE_ERROR``). Times are
    ISO-8601 (or epoch) and compared as numbers. ``regex_pattern`` is a Python regex run
    over each span's raw JSON line: a trace matches when any of its spans does.
    """

    has_errors: bool | None = None
    model_names: list[str] | None = None
    service_names: list[str] | None = None
    agent_names: list[str] | None = None
    tool_names: list[str] | None = None
    categories: list[str] | None = Field(
        default=None, description="span categories: agent, llm, tool, chain, guardrail, handoff, other"
    )
    test_outcome: list[str] | str | None = Field(default=None, description="passed, failed, error, skipped")
    test_nodeid: str | None = Field(default=None, description="substring of the pytest node id")
    start_time_gte: str | None = None
    end_time_lte: str | None = None
    regex_pattern: str | None = None


class TraceSummary(_Model):
    """One trace from the index alone (no file reads)."""

    trace_id: str
    span_count: int
    start_time: str
    end_time: str
    duration_ms: float
    has_errors: bool
    error_span_count: int
    service_names: list[str]
    model_names: list[str]
    agent_names: list[str]
    tool_names: list[str]
    categories: dict[str, int]
    total_input_tokens: int
    total_output_tokens: int
    test_nodeid: str | None = None
    test_outcome: str | None = None
    raw_jsonl_bytes: int


class TraceQueryResult(_Model):
    traces: list[TraceSummary]
    total: int
    note: str = ""


class TraceCountResult(_Model):
    total: int


class ErrorTaxonomyGroup(_Model):
    """One (span name, status message) error signature with its reach."""

    span_name: str
    status_message: str
    error_span_count: int
    trace_count: int
    example_trace_ids: list[str]


class DatasetOverview(_Model):
    """Rollup of the filtered traces: counts, time bounds, distinct facets (capped), totals."""

    total_traces: int
    total_spans: int
    earliest_start_time: str
    latest_end_time: str
    service_names: list[str]
    model_names: list[str]
    agent_names: list[str]
    tool_names: list[str]
    categories: dict[str, int]
    error_trace_count: int
    error_span_count: int
    test_outcomes: dict[str, int]
    total_input_tokens: int
    total_output_tokens: int
    raw_jsonl_bytes: int
    sample_trace_ids: list[str] = Field(default_factory=list)
    error_taxonomy: list[ErrorTaxonomyGroup] = Field(default_factory=list)
    note: str = ""


class OversizedTraceSummary(_Model):
    """Returned instead of spans when they would not fit the byte budget: what to ask next."""

    trace_id: str
    span_count: int
    response_bytes: int
    response_bytes_budget: int
    largest_spans: list[dict[str, Any]]
    top_span_names: list[tuple[str, int]]
    error_span_ids: list[str]
    recommendation: str


class TraceView(_Model):
    """Spans of one trace in file order (attribute values capped), or ``oversized`` instead."""

    trace_id: str
    spans: list[dict[str, Any]]
    oversized: OversizedTraceSummary | None = None
    note: str = ""


class SpanMatchRecord(_Model):
    """One regex match in one span's raw JSON line, with context."""

    trace_id: str
    span_id: str
    span_index: int
    span_name: str
    kind: str
    status_code: str
    parent_span_id: str
    raw_jsonl_bytes: int
    match_text: str
    matched_context: str
    match_start_char: int
    match_end_char: int


class TraceSearchResult(_Model):
    trace_id: str
    match_count: int
    returned_match_count: int
    has_more: bool
    matches: list[SpanMatchRecord]
    note: str = ""


class SpanSearchResult(_Model):
    trace_id: str
    span_id: str
    match_count: int
    returned_match_count: int
    has_more: bool
    matches: list[SpanMatchRecord]
    note: str = ""


class RenderedTrace(_Model):
    trace_id: str
    text: str
    truncated: bool = False


# ---------------------------------------------------------------- tool arguments


class DatasetOverviewArguments(_Model):
    filters: TraceFilters = Field(default_factory=TraceFilters)


class QueryTracesArguments(_Model):
    filters: TraceFilters = Field(default_factory=TraceFilters)
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


class CountTracesArguments(_Model):
    filters: TraceFilters = Field(default_factory=TraceFilters)


class ViewTraceArguments(_Model):
    trace_id: str


class ViewSpansArguments(_Model):
    trace_id: str
    span_ids: list[str] = Field(min_length=1, max_length=200)


class SearchTraceArguments(_Model):
    trace_id: str
    regex_pattern: str
    context_buffer_chars: int = Field(default=100, ge=0, le=2_000)
    max_matches: int = Field(default=50, ge=1, le=500)


class SearchSpanArguments(_Model):
    trace_id: str
    span_id: str
    regex_pattern: str
    context_buffer_chars: int = Field(default=100, ge=0, le=2_000)
    max_matches: int = Field(default=50, ge=1, le=500)


class RenderTraceArguments(_Model):
    trace_id: str


class ToolSpec(_Model):
    """One store method exposed as an LLM tool: its name, what it is for, its argument and result schemas."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str
    description: str
    arguments: type[BaseModel]
    result: type[BaseModel]


TOOLS: dict[str, ToolSpec] = {
    t.name: t
    for t in (
        ToolSpec(
            name="get_dataset_overview",
            description="Counts, time bounds, facets (models, agents, tools, services, categories, test outcomes), "
            "token totals, sample trace ids and the top error signatures of the filtered traces. Call first.",
            arguments=DatasetOverviewArguments,
            result=DatasetOverview,
        ),
        ToolSpec(
            name="query_traces",
            description="A page of trace summaries from the index (no file reads); `note` gives the next offset.",
            arguments=QueryTracesArguments,
            result=TraceQueryResult,
        ),
        ToolSpec(
            name="count_traces",
            description="How many traces match the filters; cheap, use it to size a set before reading traces.",
            arguments=CountTracesArguments,
            result=TraceCountResult,
        ),
        ToolSpec(
            name="view_trace",
            description="Every span of a trace with attribute values capped; too large → `oversized` says what to "
            "call instead (render_trace, search_trace, view_spans).",
            arguments=ViewTraceArguments,
            result=TraceView,
        ),
        ToolSpec(
            name="view_spans",
            description="Named spans of a trace (up to 200) with a higher per-value cap.",
            arguments=ViewSpansArguments,
            result=TraceView,
        ),
        ToolSpec(
            name="search_trace",
            description="Regex over the raw JSON of each span of a trace: matches with context, exact total count.",
            arguments=SearchTraceArguments,
            result=TraceSearchResult,
        ),
        ToolSpec(
            name="search_span",
            description="Regex inside one span's raw JSON, for spans too large to view whole.",
            arguments=SearchSpanArguments,
            result=SpanSearchResult,
        ),
        ToolSpec(
            name="render_trace",
            description="The trace as a compact indented tree: name, category, duration, status, model/tokens, "
            "tool arguments/results, errors, test outcome.",
            arguments=RenderTraceArguments,
            result=RenderedTrace,
        ),
    )
}
