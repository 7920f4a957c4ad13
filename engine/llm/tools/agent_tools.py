"""Tools that act on the engine itself: ``synthesize_traces``, ``get_context_item``, ``call_subagent``, ``final_answer``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.findings import Signature
from engine.llm.tools.base import Scope, ToolCallContext, ToolError

SYNTHESIS_SYSTEM = (
    "You summarize agent traces for an analyst looking for systemic failure modes. For the traces given, "
    "say what the agent was asked, what it did, where and how it failed (quote error text exactly, name tools "
    "and span ids), and what the traces share. Be concise; never invent ids."
)


class SynthesizeTracesArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_ids: list[str] = Field(min_length=1)
    focus: str | None = None


class SynthesizeTracesTool:
    name = "synthesize_traces"
    description = (
        "Summarize a set of traces with a cheaper model (each trace rendered compactly; ids and bytes capped). "
        "Use it to read many traces without filling your context."
    )
    arguments: type[BaseModel] = SynthesizeTracesArguments
    scope: Scope = "all"

    async def run(self, ctx: ToolCallContext, args: SynthesizeTracesArguments) -> Any:
        env = ctx.env
        s = env.settings
        ids = list(dict.fromkeys(args.trace_ids))
        dropped = ids[s.synthesis_max_traces :]
        ids = ids[: s.synthesis_max_traces]
        known = set(env.store.trace_ids) if env.store is not None else set()
        unknown = [t for t in ids if t not in known]
        ids = [t for t in ids if t in known]
        if not ids:
            raise ToolError(f"none of these trace ids exist: {', '.join(unknown[:10])}; use ids from query_traces")
        per = max(1024, s.synthesis_max_bytes // len(ids))
        assert env.run_blocking is not None
        rendered = await env.run_blocking(lambda: [env.store.render_trace(t, budget=per).text for t in ids])
        parts = [f"trace_ids: {', '.join(ids)}"]
        if args.focus:
            parts.append(f"focus: {args.focus}")
        parts.extend(rendered)
        assert env.complete_text is not None
        summary = await env.complete_text(SYNTHESIS_SYSTEM, "\n\n".join(parts), 1200)
        out: dict[str, Any] = {"summary": summary, "trace_ids": ids}
        if unknown:
            out["unknown_trace_ids"] = unknown
        if dropped:
            out["not_summarized"] = f"{len(dropped)} ids over the cap of {s.synthesis_max_traces}: call again for them"
        return out


class GetContextItemArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str


class GetContextItemTool:
    name = "get_context_item"
    description = (
        "Return the original content of one of your own earlier messages or tool results by id (e.g. a "
        "compacted tool result `ctx-7`)."
    )
    arguments: type[BaseModel] = GetContextItemArguments
    scope: Scope = "all"

    async def run(self, ctx: ToolCallContext, args: GetContextItemArguments) -> Any:
        text = ctx.context_item(args.item_id)
        if text is None:
            raise ToolError(f"no context item {args.item_id!r}; ids look like ctx-3 and appear in compacted results")
        return text


class CallSubagentArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = Field(min_length=1, description="a focused, self-contained question for the subagent")


class CallSubagentTool:
    name = "call_subagent"
    description = (
        "Delegate a focused question to a subagent with the same trace tools. Returns its answer. Several calls "
        "in one turn run in parallel."
    )
    arguments: type[BaseModel] = CallSubagentArguments
    scope: Scope = "delegating"

    async def run(self, ctx: ToolCallContext, args: CallSubagentArguments) -> Any:
        if ctx.spawn is None:
            raise ToolError("call_subagent is not available at this depth")
        return await ctx.spawn(args.input)


class EvidenceItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: str
    span_id: str | None = None


class ProposedMode(BaseModel):
    """One failure mode as the model proposes it in ``final_answer``."""

    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1)
    category: str = "llm"
    description: str = ""
    evidence: list[EvidenceItem] = Field(default_factory=list)
    signature: Signature | None = Field(
        None,
        description="a predicate that re-finds the mode's spans: category, tool_name, span_name, field "
        "(error|output|input|any) and an RE2 regex; omit when no predicate can express the pattern",
    )
    suggested_fix: str | None = None
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    suspected_change: str | None = Field(
        None, max_length=500,
        description="where in the project's code the mode comes from: `path:line` (or `path`), relative to the "
        "repository; when git_diff is offered, a line the change under review changed. Kept only if it checks out",
    )


class FinalAnswerArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(description="the complete final report in Markdown")
    failure_modes: list[ProposedMode] = Field(default_factory=list)


class FinalAnswerTool:
    """Handled by the root loop (it ends the run); ``run`` is never reached."""

    name = "final_answer"
    description = (
        "Deliver your final report and end the run: `answer` (Markdown) and `failure_modes`, each with "
        "title, category, description, evidence [{trace_id, span_id?}] (real ids you saw), a signature that "
        "matches its evidence spans, suggested_fix, confidence and, when the code tools showed it, "
        "suspected_change (path:line). Unsupported modes are sent back once."
    )
    arguments: type[BaseModel] = FinalAnswerArguments
    scope: Scope = "root"

    async def run(self, ctx: ToolCallContext, args: Any) -> Any:  # pragma: no cover - the loop intercepts it
        raise ToolError("final_answer is handled by the engine")
