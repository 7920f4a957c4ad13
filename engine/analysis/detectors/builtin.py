"""The built-in detectors, written against the public interface (``api``) like any user detector.

Span detectors implement ``on_span(span, run)`` over the normalized view; the scanner calls them
only for spans its cheap pre-check could not clear (an error status, a suspicious tool result, an
LLM call with tools or no plain text...) — the same decision each would reach on a plain span,
taken without normalizing it. The typed fast path (``fast_scan``) and the scanner's plain-LLM
branch inline the two checks a plain LLM span can still trigger (finish reason, refusal text)
through ``finish_hits`` and ``refusals``. Run detectors implement ``on_run(run)``. The families'
matching rules stay in their modules (``tool_errors``, ``llm_api``, ``refusals``...).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from engine.analysis.config import AnalysisConfig
from engine.analysis.detectors import (
    arguments,
    budget,
    exceptions,
    guardrails,
    hallucinated_tools,
    handoffs,
    llm_api,
    refusals,
    repetition,
    tool_errors,
)
from engine.analysis.detectors.api import RunDetector, RunHook, check_detector
from engine.analysis.detectors.base import Hit, TraceState
from engine.analysis.templates import template_of
from engine.traces.normalize import NormalizedSpan


def tool_failure_message(span: NormalizedSpan) -> str | None:
    """Why a tool span failed — its error status or the error its result reports in-band — or None."""
    if span.is_error:
        return span.error_message or span.error_type or span.tool_result or "error"
    return tool_errors.result_error(span.tool_result)


def tool_failure_hit(tool: str, args: str | None, span_id: str, message: str) -> Hit:
    """A failed tool call: a tool that does not exist, an exhausted budget, or a tool error."""
    if tool_errors.is_unknown_tool_error(message):
        return hallucinated_tools.hit(tool, span_id, f"{tool}({args or ''}) -> {message}")
    kind = budget.budget_kind(message)
    if kind:
        return budget.hit(kind, span_id, message)
    return tool_errors.detect(tool, args, span_id, message)


def finish_hits(finish: object, model: str | None, span_id: str, text: str | None) -> list[Hit]:
    """A truncated or content-filtered LLM call, from its finish reason (a string, a list or a JSON array)."""
    if isinstance(finish, str) and finish.startswith("["):
        try:
            finish = orjson.loads(finish)
        except orjson.JSONDecodeError:
            pass
    if isinstance(finish, list) and finish:
        finish = finish[0]
    reason = finish.lower() if isinstance(finish, str) else ""
    if reason in llm_api.TRUNCATION_REASONS:
        return [llm_api.truncated_hit(model, span_id, text)]
    if reason == "content_filter":
        fix = llm_api.api_error_class("content_filter")[1]  # type: ignore[index]
        return [llm_api.api_hit("content filter", fix, model, span_id, "finish_reason=content_filter")]
    return []


class ToolFailures:
    """Tool calls that fail (status or in-band result): tool errors, unknown tools, exhausted budgets."""

    name = "tool_failures"

    def on_span(self, span: NormalizedSpan, run: TraceState) -> list[Hit] | None:
        if span.category != "tool":
            return None
        message = tool_failure_message(span)
        if not message:
            return None
        run.explained.add(template_of(message))
        return [tool_failure_hit(span.tool_name or span.name, span.tool_arguments, span.span_id, message)]


class LlmCalls:
    """LLM calls: API errors, budgets, truncation, calls to tools never offered, bad arguments, refusals."""

    name = "llm_calls"

    def on_span(self, span: NormalizedSpan, run: TraceState) -> list[Hit] | None:
        if span.category != "llm":
            return None
        hits: list[Hit] = []
        if span.is_error:
            message = span.error_message or span.error_type or "error"
            kind = budget.budget_kind(message, span.error_type)
            cls = llm_api.api_error_class(message, span.error_type)
            if kind:
                hits.append(budget.hit(kind, span.span_id, message))
            elif cls:
                hits.append(llm_api.api_hit(cls[0], cls[1], span.model, span.span_id, message))
            else:
                hits.append(exceptions.hit(span.error_type, message, span.name, span.span_id))
            run.explained.add(template_of(message))
        if span.finish_reason:
            hits.extend(finish_hits(span.finish_reason, span.model, span.span_id, span.output_text))
        calls = span.tool_calls_requested
        if calls:
            offered = span.tools_offered
            hits.extend(hallucinated_tools.detect_requested([(c.name, c.arguments) for c in calls], offered,
                                                            span.span_id))
            for c in calls:
                if not offered or c.name in offered:
                    hits.extend(arguments.detect(c.name, c.arguments or "", offered.get(c.name), span.span_id))
        text = span.output_text
        if text and refusals.is_refusal(text):
            run.refusals += 1
            hits.append(refusals.hit(span.agent_name or "", span.span_id, text))
        return hits


class SpanErrors:
    """Errors on any other span: unknown tools named by a turn's error, guardrails, budgets, exceptions.

    An exception is held in ``run.pending_exceptions`` until the run ends: a more specific detector
    (a hallucinated tool, a refusal) may explain it by then.
    """

    name = "span_errors"

    def on_span(self, span: NormalizedSpan, run: TraceState) -> list[Hit] | None:
        if span.category in ("tool", "llm"):
            return None
        attrs = span.attributes
        if span.is_error and span.error_tool and tool_errors.is_unknown_tool_error(
            f"{span.error_type or ''}: {span.error_message or ''}"
        ):  # e.g. the Agents SDK's "Tool not found" on a turn span, naming the tool in its error data
            tool = span.error_tool
            run.explained.add(template_of(span.error_message or ""))
            return [hallucinated_tools.hit(tool, span.span_id, f"{tool}(...) -> {span.error_message or ''}")]
        if span.category == "guardrail" and guardrails.tripped(attrs, span.is_error, span.error_type):
            name = guardrails.guardrail_name(attrs, span.name)
            if span.error_message:
                run.explained.add(template_of(span.error_message))
            return [guardrails.hit(name, span.span_id, span.error_message or f"{name} tripped")]
        if not span.is_error:
            return None
        message = span.error_message or span.error_type or ""
        kind = budget.budget_kind(message, span.error_type)
        if kind:
            run.explained.add(template_of(message))
            return [budget.hit(kind, span.span_id, message)]
        if span.error_type and guardrails.tripped({}, False, span.error_type):
            run.explained.add(template_of(message))
            return [guardrails.hit(span.error_type, span.span_id, message)]
        h = exceptions.hit(span.error_type, message, span.name, span.span_id)
        # agent frameworks re-raise a hallucinated tool call or a refusal as an exception on an enclosing span
        if tool_errors.is_unknown_tool_error(f"{span.error_type or ''}: {message}"):
            h.explained_by = hallucinated_tools.DETECTOR
        elif refusals.is_refusal(message):
            h.explained_by = refusals.DETECTOR
        run.pending_exceptions.append(h)
        return None


class SchemaArguments:
    """Executed tool calls whose arguments break the schema the model was offered (when no request was seen)."""

    name = "schema_arguments"

    def on_run(self, run: TraceState) -> list[Hit] | None:
        if not (run.tools and not run.requested and run.schemas):
            return None
        hits: list[Hit] = []
        for t in run.tools:
            if t.tool in run.schemas:
                hits.extend(arguments.detect(t.tool, t.arguments, run.schemas[t.tool], t.span_id))
        return hits


@dataclass
class Repetition:
    """Identical calls repeated, and a failing tool retried, within one run (calls in time order)."""

    repeat_min: int
    retry_min: int
    name: str = "repetition"

    def on_run(self, run: TraceState) -> list[Hit] | None:
        calls = run.tools or run.requested
        if len(calls) < 2:
            return None
        hits = repetition.detect_repeats(calls, self.repeat_min)
        if any(c.is_error for c in calls):
            hits.extend(repetition.detect_retry_loops(calls, self.retry_min))
        return hits


@dataclass
class RefusalLoop:
    """The model refuses again and again in one run."""

    loop_min: int
    name: str = "refusal_loop"

    def on_run(self, run: TraceState) -> list[Hit] | None:
        if run.refusals < self.loop_min:
            return None
        last = max((h for h in run.hits if h.detector == refusals.DETECTOR), key=lambda h: h.span_id)
        return [refusals.loop_hit(last.key, last.span_id, run.refusals)]


class EmptyFinalAnswer:
    """The run's last LLM call answered with nothing (a recorded empty output, no tool calls, no error)."""

    name = "empty_final_answer"

    def on_run(self, run: TraceState) -> list[Hit] | None:
        final = run.final_turn
        if final is None:
            return None
        _, span_id, text, n_calls, is_error = final
        # text None: the output was not recorded (unknown), which is not an empty answer
        if not is_error and n_calls == 0 and text is not None and not text.strip():
            return [llm_api.empty_final_hit(span_id)]
        return None


class HandoffPingPong:
    """Control bouncing between two agents."""

    name = "handoff_ping_pong"

    def on_run(self, run: TraceState) -> list[Hit] | None:
        return handoffs.detect(run.agents) if len(run.agents) >= 4 else None


@dataclass(frozen=True)
class Builtins:
    """The built-in detectors of one analysis, checked like user detectors, hooks bound once."""

    tool: ToolFailures
    llm: LlmCalls
    other: SpanErrors
    run_hooks: tuple[RunHook, ...]


def builtin_detectors(cfg: AnalysisConfig) -> Builtins:
    runs: list[RunDetector] = [SchemaArguments(), Repetition(cfg.repeat_min, cfg.retry_min),
                               RefusalLoop(cfg.refusal_loop_min), EmptyFinalAnswer(), HandoffPingPong()]
    for d in (ToolFailures(), LlmCalls(), SpanErrors(), *runs):
        check_detector(d)
    return Builtins(ToolFailures(), LlmCalls(), SpanErrors(), tuple(d.on_run for d in runs))


BUILTIN_NAMES = frozenset({"tool_failures", "llm_calls", "span_errors", "schema_arguments", "repetition",
                           "refusal_loop", "empty_final_answer", "handoff_ping_pong"})
