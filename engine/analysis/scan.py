"""One streaming pass over spans: cheap checks on every span, normalization only on spans that can matter.

Spans may arrive in any order and interleaved across traces, so per-trace state is compact
(tool calls, LLM turn summaries, agent sequence, hits) and per-trace detectors run once all
input was read. Nothing here keeps raw spans.
"""

from __future__ import annotations

from collections.abc import Iterable

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
from engine.analysis.detectors.base import Hit, LlmTurn, ToolExec, TraceState
from engine.analysis.detectors.outliers import DETECTOR_LATENCY, DETECTOR_TOKENS, OutlierStats
from engine.analysis.templates import template_of
from engine.traces import conventions as C
from engine.traces.normalize import category_of, normalize
from engine.traces.span import STATUS_ERROR, Span, iso_to_ns

_FAILING = C.OUTCOMES_FAILING
SYNTHETIC_TIME = "halo.synthetic_time"
_INTERESTING = frozenset({"tool", "llm", "agent", "guardrail", "handoff"})


class Scanner:
    """Feed spans with ``add``; call ``finish`` once to run the per-trace detectors."""

    def __init__(self, config: AnalysisConfig) -> None:
        self.cfg = config
        self.spans = 0
        self.index: dict[str, int] = {}
        self.states: list[TraceState] = []
        self.outliers = OutlierStats(config.outlier_k, config.outlier_min_samples)

    def add_all(self, spans: Iterable[Span]) -> None:
        add = self.add
        for span in spans:
            add(span)

    def add(self, span: Span) -> None:
        """The hot path: a few dict lookups per span; ``normalize`` only for tool/LLM/agent/error spans."""
        self.spans += 1
        tid = span.get("trace_id") or ""
        idx = self.index.get(tid)
        if idx is None:
            idx = self.index[tid] = len(self.states)
            self.states.append(TraceState(tid))
        st = self.states[idx]
        attrs = span.get("attributes") or {}
        nodeid = attrs.get(C.TEST_NODEID)
        if nodeid:
            if st.nodeid is None:
                st.nodeid = str(nodeid)
            outcome = attrs.get(C.TEST_OUTCOME)
            if outcome and (st.outcome is None or outcome in _FAILING):
                st.outcome = str(outcome)
        name = span.get("name") or ""
        cat = category_of(attrs, name)
        status = span.get("status") or {}
        is_err = status.get("code") == STATUS_ERROR or "error.type" in attrs
        if SYNTHETIC_TIME in attrs:  # converters invent times for transcripts: no latency to judge
            start = end = 0
        else:
            start = iso_to_ns(span.get("start_time") or "") or 0
            end = iso_to_ns(span.get("end_time") or "") or start
        exit_status = attrs.get(C.RUN_EXIT_STATUS)
        if exit_status:
            kind = budget.budget_kind(str(exit_status))
            if kind:
                st.hits.append(budget.hit(kind, span.get("span_id") or "", f"exit status: {exit_status}"))
        if cat not in _INTERESTING and not is_err:
            if end > start:
                self.outliers.add(DETECTOR_LATENCY, f"{cat}:{name}", (end - start) / 1e6, idx, span.get("span_id") or "")
            return
        ns = normalize(span)
        if cat == "tool":
            self._tool(st, ns, idx)
            group = f"tool:{ns.tool_name}"
        elif cat == "llm":
            self._llm(st, ns)
            group = f"llm:{ns.model or name}"
            if ns.output_tokens:
                self.outliers.add(DETECTOR_TOKENS, f"output:{ns.model or name}", float(ns.output_tokens), idx, ns.span_id)
        else:
            self._other(st, ns, cat, attrs)
            group = f"{cat}:{name}"
        if end > start:
            self.outliers.add(DETECTOR_LATENCY, group, (end - start) / 1e6, idx, ns.span_id)

    # ------------------------------------------------------------ per span

    def _tool(self, st: TraceState, ns, idx: int) -> None:
        tool = ns.tool_name or ns.name
        st.tools_called.add(tool)
        message = tool_errors.error_text(ns)
        template = ""
        if message:
            template = template_of(message)
            kind = budget.budget_kind(message)
            if tool_errors.is_unknown_tool_error(message):
                st.hits.append(hallucinated_tools.hit(tool, ns.span_id, f"{tool}({ns.tool_arguments or ''}) -> {message}"))
            elif kind:
                st.hits.append(budget.hit(kind, ns.span_id, message))
            else:
                st.hits.append(tool_errors.detect(ns, message))
            st.explained.add(template)
        st.tools.append(ToolExec(ns.start_ns, ns.span_id, tool, ns.tool_arguments, bool(message), template))

    def _llm(self, st: TraceState, ns) -> None:
        if ns.is_error:
            message = ns.error_message or ns.error_type or "error"
            kind = budget.budget_kind(message, ns.error_type)
            cls = llm_api.api_error_class(message, ns.error_type)
            if kind:
                st.hits.append(budget.hit(kind, ns.span_id, message))
            elif cls:
                st.hits.append(llm_api.api_hit(cls[0], cls[1], ns.model, ns.span_id, message))
            else:
                st.hits.append(exceptions.hit(ns.error_type, message, ns.name, ns.span_id))
            st.explained.add(template_of(message))
        finish = (ns.finish_reason or "").lower()
        if finish in llm_api.TRUNCATION_REASONS:
            st.hits.append(llm_api.truncated_hit(ns.model, ns.span_id, ns.output_text))
        elif finish == "content_filter":
            cls, fix = "content filter", llm_api.api_error_class("content_filter")[1]  # type: ignore[index]
            st.hits.append(llm_api.api_hit(cls, fix, ns.model, ns.span_id, "finish_reason=content_filter"))
        if ns.tools_offered:
            st.schemas.update(ns.tools_offered)
        calls = ns.tool_calls_requested
        if calls:
            st.hits.extend(
                hallucinated_tools.detect_requested([(c.name, c.arguments) for c in calls], ns.tools_offered, ns.span_id)
            )
            for c in calls:
                if ns.tools_offered and c.name not in ns.tools_offered:
                    continue
                st.hits.extend(arguments.detect(c.name, c.arguments or "", ns.tools_offered.get(c.name), ns.span_id))
                st.requested.append(ToolExec(ns.start_ns, ns.span_id, c.name, c.arguments, False))
        text = ns.output_text
        if text and refusals.is_refusal(text):
            st.refusals += 1
            st.hits.append(refusals.hit(ns.agent_name or "", ns.span_id, text))
        st.llm_turns.append(LlmTurn(ns.end_ns, ns.span_id, text, len(calls), ns.is_error))

    def _other(self, st: TraceState, ns, cat: str, attrs: dict) -> None:
        if cat == "agent" and ns.agent_name:
            st.agents.append((ns.start_ns, ns.span_id, ns.agent_name))
        elif cat == "handoff":
            for k, v in attrs.items():
                if k.endswith("to_agent") and isinstance(v, str) and v:
                    st.agents.append((ns.start_ns, ns.span_id, v))
        if cat == "guardrail" and guardrails.tripped(attrs, ns.is_error, ns.error_type):
            name = guardrails.guardrail_name(attrs, ns.name)
            st.hits.append(guardrails.hit(name, ns.span_id, ns.error_message or f"{name} tripped"))
            if ns.error_message:
                st.explained.add(template_of(ns.error_message))
            return
        if not ns.is_error:
            return
        message = ns.error_message or ns.error_type or ""
        kind = budget.budget_kind(message, ns.error_type)
        if kind:
            st.hits.append(budget.hit(kind, ns.span_id, message))
            st.explained.add(template_of(message))
        elif ns.error_type and guardrails.tripped({}, False, ns.error_type):
            st.hits.append(guardrails.hit(ns.error_type, ns.span_id, message))
            st.explained.add(template_of(message))
        else:
            st.pending_exceptions.append(exceptions.hit(ns.error_type, message, ns.name, ns.span_id))

    # ------------------------------------------------------------ per trace

    def finish_trace(self, st: TraceState) -> list[Hit]:
        """Run the per-trace detectors and return all of the trace's hits."""
        cfg = self.cfg
        hits = st.hits
        st.tools.sort(key=lambda t: (t.start_ns, t.span_id))
        st.requested.sort(key=lambda t: (t.start_ns, t.span_id))
        calls = st.tools or st.requested
        if st.tools and not st.requested and st.schemas:
            for t in st.tools:
                if t.tool in st.schemas:
                    hits.extend(arguments.detect(t.tool, t.arguments, st.schemas[t.tool], t.span_id))
        if len(calls) >= 2:
            hits.extend(repetition.detect_repeats(calls, cfg.repeat_min))
            hits.extend(repetition.detect_retry_loops(calls, cfg.retry_min))
        if st.refusals >= cfg.refusal_loop_min:
            last = max((h for h in hits if h.detector == refusals.DETECTOR), key=lambda h: h.span_id)
            hits.append(refusals.loop_hit(last.key, last.span_id, st.refusals))
        if st.llm_turns:
            final = max(st.llm_turns, key=lambda t: (t.end_ns, t.span_id))
            if not final.is_error and final.n_calls == 0 and not (final.text or "").strip():
                hits.append(llm_api.empty_final_hit(final.span_id))
        if len(st.agents) >= 4:
            hits.extend(handoffs.detect(st.agents))
        for h in st.pending_exceptions:
            if h.key.partition("\x1f")[2] not in st.explained:
                hits.append(h)
        return hits
