"""One streaming pass over spans: cheap checks on every span, normalization only on spans that can matter.

Spans may arrive in any order and interleaved across traces, so per-trace state is compact
(tool calls, LLM turn summaries, agent sequence, hits) and per-trace detectors run once all
input was read. Nothing here keeps raw spans.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import cast

import msgspec

from engine.analysis.cold import ColdState, freeze, thaw
from engine.analysis.config import AnalysisConfig
from engine.analysis.detectors import budget, refusals, tool_errors
from engine.analysis.detectors.api import DetectorSet
from engine.analysis.detectors.base import Hit, ToolExec, TraceState
from engine.analysis.detectors.builtin import (
    builtin_detectors,
    finish_hits,
    tool_failure_hit,
    tool_failure_message,
)
from engine.analysis.detectors.outliers import DETECTOR_LATENCY, DETECTOR_TOKENS, OutlierStats
from engine.analysis.detectors.refusals import is_refusal
from engine.analysis.lite import (
    OI_TEXT,
    duration_ms,
    first,
    first_present,
    first_str,
    plain_llm,
)
from engine.analysis.templates import template_of
from engine.traces import conventions
from engine.traces.normalize import (  # the shared dialect tables: one truth for normalize and the scanner
    AGENT_NAME_KEYS,
    FINISH_REASON_KEYS,
    MODEL_KEYS,
    OUTPUT_TOKEN_KEYS,
    TOOL_ARGS_KEYS,
    TOOL_NAME_KEYS,
    TOOL_RESULT_KEYS,
    category_of,
    normalize,
    output_recorded,
    tool_messages_in_input,
)
from engine.traces.normalize import tool_name_from_span_name as tool_name_from_span_name
from engine.traces.recent import Recent
from engine.traces.span import STATUS_ERROR, Span

_FAILING = conventions.OUTCOMES_FAILING
_NODEID = conventions.TEST_NODEID
_OUTCOME = conventions.TEST_OUTCOME
_EXIT = conventions.RUN_EXIT_STATUS
_OI_KIND = "openinference.span.kind"
_BY_START = attrgetter("start", "span_id")
_TN0 = TOOL_NAME_KEYS[0]
_M0 = MODEL_KEYS[0]
_LF_LEVEL = "langfuse.observation.level"
_OT0 = OUTPUT_TOKEN_KEYS[0]
# First characters of tool results that may report an error in-band (or need stripping / converting).
RESULT_SUSPECT = frozenset("EeTtFfUu?") | frozenset(" \t\r\n")
OI_CATEGORY = {"LLM": "llm", "TOOL": "tool", "AGENT": "agent", "CHAIN": "chain", "GUARDRAIL": "guardrail"}
SYNTHETIC_TIME = "halo.synthetic_time"
_INTERESTING = frozenset({"tool", "llm", "agent", "guardrail", "handoff"})
HOT_TRACES = 128  # traces whose state stays unpacked (``engine.analysis.cold``)
# a finished trace: its nodeid as scanned, its hits, the first call of each tool (tool, span id) when asked
Finished = tuple[str | None, list[Hit], list[tuple[str, str]] | bytes | None]
_CALLS = msgspec.msgpack.Encoder()
_CALLS_DECODER = msgspec.msgpack.Decoder()


def calls_of(calls: list[tuple[str, str]] | bytes | None) -> list[tuple[str, str]]:
    """The first calls of a finished trace (``Finished``), unpacked."""
    if calls is None:
        return []
    return _CALLS_DECODER.decode(calls) if type(calls) is bytes else calls  # type: ignore[return-value]


class Scanner:
    """Feed spans with ``add_all`` (or ``add``); then call ``finish_trace`` on each of ``states``.

    ``OI_CATEGORY`` short-cuts ``category_of`` for the exact OpenInference kind spellings (the same
    mapping normalize applies first); any other spelling or dialect goes through ``category_of``.
    """

    def __init__(self, config: AnalysisConfig, detectors: DetectorSet | None = None) -> None:
        self.cfg = config
        self.builtins = builtin_detectors(config)
        self.user = detectors or DetectorSet()
        self.spans = 0
        self.index: dict[str, int] = {}
        # a trace not read for a while is frozen (``engine.analysis.cold``); not when user span hooks
        # may hold on to a run's state between its spans
        self.states: list[TraceState | ColdState] = []
        self._recent: Recent[int] = Recent(HOT_TRACES if not self.user.span_hooks else 1 << 62)
        self.done: dict[int, Finished] = {}  # traces finished already (``finish_all``)
        self.outliers = OutlierStats(
            config.outlier_k,
            config.outlier_min_samples,
            config.outlier_min_ratio,
            config.outlier_min_excess_ms,
            config.outlier_min_excess_tokens,
        )

    def enter(self, trace_id: str) -> tuple[int, TraceState]:
        """The trace's number and state, for a stretch of its spans (created, or thawed if it was frozen);
        the trace that stopped being recent because of it is frozen."""
        states = self.states
        idx = self.index.get(trace_id, -1)
        if idx < 0:
            idx = self.index[trace_id] = len(states)
            st = TraceState(trace_id)
            states.append(st)
        else:
            st = self.state(idx)
        old = self._recent.touch(idx)
        if old is not None:
            was = states[old]
            if type(was) is TraceState:
                cold = freeze(was)
                if cold is not None:
                    states[old] = cold
        return idx, st

    def state(self, idx: int) -> TraceState:
        """Trace ``idx``'s state, thawed in place if it was frozen."""
        st = self.states[idx]
        if type(st) is ColdState:
            st = self.states[idx] = thaw(st)
            self._recent.revived()
        return st  # type: ignore[return-value]

    def finish(self, idx: int, with_calls: bool) -> Finished:
        """Run the per-run detectors on trace ``idx`` (once: ``finish_all`` may have done it already).

        Returns its nodeid as scanned, its hits and, when ``with_calls``, the first call of each tool
        (span id) in time order; only the test linkage of its state stays behind (``ColdState``).
        """
        done = self.done.pop(idx, None)
        if done is not None:
            return done
        st = self.states[idx]
        full: TraceState = thaw(st) if type(st) is ColdState else st  # type: ignore[assignment]
        nodeid = full.nodeid
        hits = self.finish_trace(full)
        calls = None
        if with_calls:
            first: dict[str, str] = {}
            for t in full.tools:
                first.setdefault(t.tool, t.span_id)
            calls = list(first.items())
        self.states[idx] = ColdState(full.trace_id, full.nodeid, full.outcome)
        return nodeid, hits, calls

    def freeze_all(self) -> None:
        """Freeze every state that can be (before shipping them to another process)."""
        states = self.states
        for i, st in enumerate(states):
            if type(st) is TraceState:
                states[i] = freeze(st) or st

    def finish_all(self) -> None:
        """Finish every trace now (a split part whose traces are complete; only without user run hooks,
        which see runs in the analysis's own process). The first calls are kept as msgpack until read
        (``calls_of``): a (tool, span id) tuple per tool and trace would cost ~50 MB at 1M spans."""
        done = self.done
        for idx in range(len(self.states)):
            scanned, hits, calls = self.finish(idx, True)
            if calls:
                try:
                    calls = _CALLS.encode(calls)  # type: ignore[assignment]
                except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
                    pass
            done[idx] = (scanned, hits, calls)

    def add(self, span: Span) -> None:
        self.add_all((span,))

    def add_all(self, spans: Iterable[Span]) -> None:
        """Feed a span stream; user ``on_span`` detectors see each span once the scanner has filed it."""
        if self.user.span_hooks:  # states are never frozen then (see __init__)
            spans = self.user.observe(spans, cast("list[TraceState]", self.states), self.index)
        self.add_dicts(spans, None)

    def add_dicts(self, spans: Iterable[Span], last_tid: str | None) -> str | None:
        """The hot loop: plain dict gets per span; ``normalize`` only for unusual spans (errors, tools offered...).

        Written as one flat loop with local aliases: at a million spans every attribute lookup and
        call shows, and the whole analysis must cost about one parse of the input. ``last_tid`` is the
        trace of the span fed just before (``fast_scan`` hands its slow spans over one at a time): test
        linkage is read at the start of each contiguous stretch of a trace. Returns the last trace id.
        """
        index = self.index
        latency, tokens_out = self.outliers.latency, self.outliers.tokens
        oi_kinds = OI_CATEGORY
        idx = -1 if last_tid is None else index[last_tid]
        # No state before the first span when last_tid is None: that span's trace id differs from it, so the
        # loop sets st before any use. Typed as TraceState so the hot loop needs no per-span narrowing.
        st = cast(TraceState, None) if last_tid is None else self.state(idx)
        n = 0
        for span in spans:
            n += 1
            tid = span["trace_id"]
            attrs = span["attributes"]
            if tid != last_tid:
                last_tid = tid
                idx, st = self.enter(tid)
                # Test linkage is written on every span of a run (pytest capture and converters alike),
                # so reading it from the first span of each contiguous stretch of a trace suffices.
                if st.outcome is None:
                    nodeid = attrs.get(_NODEID)
                    if nodeid:
                        self.link_test(st, nodeid, attrs.get(_OUTCOME))
            name = span["name"]
            cat = oi_kinds.get(attrs.get(_OI_KIND)) or category_of(attrs, name)  # type: ignore[arg-type]
            # "may be an error": a superset of normalize()'s verdict; the slow paths ask normalize() itself
            is_err = span["status"].get("code") == STATUS_ERROR or "error.type" in attrs or _LF_LEVEL in attrs
            start = span["start_time"]
            if _EXIT in attrs:
                self._exit_status(st, span, attrs[_EXIT])
            key = name
            if cat == "tool":
                # normalize()'s precedence, unrolled (the keys come from the shared tables)
                tool = attrs.get(_TN0)
                if type(tool) is not str or not tool:
                    tool = first_str(attrs, TOOL_NAME_KEYS) or tool_name_from_span_name(name)
                args = result = None
                for k in TOOL_ARGS_KEYS:  # normalize's rule, inlined: first present and not None
                    args = attrs.get(k)
                    if args is not None:
                        break
                for k in TOOL_RESULT_KEYS:
                    result = attrs.get(k)
                    if result is not None:
                        break
                c = result[:1] if type(result) is str else "?"
                if (
                    is_err
                    or (args is not None and type(args) is not str)
                    or c in RESULT_SUSPECT
                    or (c == "{" and ('rror"' in result or "alse" in result or 'tatus"' in result))  # type: ignore[operator]
                ):
                    self._tool(st, span, start)
                else:  # the common case: a plain successful call
                    st.tools.append(ToolExec(start, span["span_id"], tool, args, False, ""))
            elif cat == "llm":
                text = attrs.get(OI_TEXT)
                key = attrs.get(_M0)
                if type(key) is not str or not key:
                    key = first_str(attrs, MODEL_KEYS) or name
                # a run whose model asked for tools that left no spans: its tool results (and errors) are
                # only in the next calls' input messages, which the slow path reads
                if is_err or type(text) is not str or not plain_llm(attrs) or (st.requested and not st.tools):
                    self._llm(st, normalize(span), span)
                else:  # the common case: text out, no tools involved
                    finish = first_present(attrs, FINISH_REASON_KEYS)
                    if finish:
                        self.note_finish(st, finish, key, span["span_id"], text)
                    if text and is_refusal(text):
                        st.refusals += 1
                        st.hits.append(refusals.hit(first_str(attrs, AGENT_NAME_KEYS) or "", span["span_id"], text))
                    end = span["end_time"]
                    final = st.final_turn
                    if final is None or end >= final[0]:
                        st.llm_turn(end, span["span_id"], text, 0, False)
                tokens = attrs.get(_OT0)
                if tokens is None:
                    tokens = first(attrs, OUTPUT_TOKEN_KEYS)
                if type(tokens) is int and tokens > 0:
                    g = tokens_out.get(key) or self.outliers.group(DETECTOR_TOKENS, key, "output")
                    g.values.append(tokens)
                    g.traces.append(idx)
                    if tokens >= g.floor:
                        g.offer(float(tokens), idx, span["span_id"])
            elif cat == "agent" and not is_err:
                st.agents.append((start, span["span_id"], first_str(attrs, AGENT_NAME_KEYS) or name))
            elif cat in _INTERESTING or is_err:
                self._other(st, normalize(span), span, cat, attrs)
            if SYNTHETIC_TIME in attrs:  # converters invent times for transcripts: no latency to judge
                continue
            end = span["end_time"]
            if len(start) == 30 and len(end) == 30 and start[:17] == end[:17]:
                try:
                    ms = (float(end[17:29]) - float(start[17:29])) * 1000.0
                except ValueError:
                    ms = 0.0
            else:
                ms = duration_ms(start, end)
            if ms > 0:
                g = latency.get(key) or self.outliers.group(DETECTOR_LATENCY, key, cat)
                g.values.append(ms)
                g.traces.append(idx)
                if ms >= g.floor:
                    g.offer(ms, idx, span["span_id"])
        self.spans += n
        return last_tid

    def link_test(self, st: TraceState, nodeid: object, outcome: object) -> None:
        """Tie the trace to its test and keep its worst outcome (the fast scan calls this too)."""
        if st.nodeid is None:
            st.nodeid = str(nodeid)
        if outcome and (st.outcome is None or outcome in _FAILING):
            st.outcome = str(outcome)

    def _exit_status(self, st: TraceState, span: Span, exit_status: object) -> None:
        kind = budget.budget_kind(str(exit_status)) if exit_status else None
        if kind:
            st.hits.append(budget.hit(kind, span.get("span_id") or "", f"exit status: {exit_status}"))

    # ------------------------------------------------------------ per span

    def _tool(self, st: TraceState, span: Span, start: str) -> None:
        """A tool span that may have failed: decided on the full normalized view (the rare path)."""
        ns = normalize(span)
        hits = self.builtins.tool.on_span(ns, st)
        template = ""
        if hits:
            st.hits.extend(hits)
            template = template_of(tool_failure_message(ns))
        st.tools.append(ToolExec(start, ns.span_id, ns.tool_name or ns.name, ns.tool_arguments, bool(hits), template))

    def note_finish(self, st: TraceState, finish: object, model: str | None, span_id: str, text: str | None) -> None:
        """The finish-reason check of ``LlmCalls``, for plain LLM spans the scan does not normalize."""
        hits = finish_hits(finish, model, span_id, text)
        if hits:
            st.hits.extend(hits)

    def _llm(self, st: TraceState, ns, span: Span) -> None:
        hits = self.builtins.llm.on_span(ns, st)
        if hits:
            st.hits.extend(hits)
        if ns.tools_offered:
            st.schemas.update(ns.tools_offered)
        calls = ns.tool_calls_requested
        attrs = span.get("attributes") or {}
        if not st.tools:
            self._input_tool_errors(st, attrs, ns.span_id)
        if calls:
            for c in calls:
                if ns.tools_offered and c.name not in ns.tools_offered:
                    continue
                st.requested.append(ToolExec(span.get("start_time") or "", ns.span_id, c.name, c.arguments, False))
            for c in calls:
                if c.call_id:
                    st.call_names[c.call_id] = (c.name, c.arguments)
        text = ns.output_text
        if text is None and (ns.output_recorded or output_recorded(attrs)):
            text = ""  # the output was recorded and holds no text: empty (None stays unknown)
        st.llm_turn(span.get("end_time") or "", ns.span_id, text, len(calls), ns.is_error)

    def _input_tool_errors(self, st: TraceState, attrs: dict, span_id: str) -> None:
        """Tool errors handed back to the model as input messages (each once per run, by call id or text)."""
        results, calls = tool_messages_in_input(attrs)
        for cid, call in calls.items():
            st.call_names.setdefault(cid, (call.name, call.arguments))
        for r in results:
            message = tool_errors.result_error(r.content)
            if not message:
                continue
            key = r.call_id or r.content
            if key not in st.input_tool_errors:
                st.input_tool_errors[key] = (r.call_id, r.name, span_id, message)

    def _other(self, st: TraceState, ns, span: Span, cat: str, attrs: dict) -> None:
        start = span.get("start_time") or ""
        if cat == "agent" and ns.agent_name:
            st.agents.append((start, ns.span_id, ns.agent_name))
        elif cat == "handoff":
            for k, v in attrs.items():
                if k.endswith("to_agent") and isinstance(v, str) and v:
                    st.agents.append((start, ns.span_id, v))
        hits = self.builtins.other.on_span(ns, st)
        if hits:
            st.hits.extend(hits)

    # ------------------------------------------------------------ per trace

    def finish_trace(self, st: TraceState) -> list[Hit]:
        """Run the run detectors (built-in, then the user's) and return all of the trace's hits."""
        hits = st.hits
        if len(st.tools) > 1:
            st.tools.sort(key=_BY_START)
        if len(st.requested) > 1:
            st.requested.sort(key=_BY_START)
        if st.input_tool_errors and not st.tools:  # no tool spans: the input messages are the only record
            for cid, name, span_id, message in st.input_tool_errors.values():
                tool, args = st.call_names.get(cid or "", (name or "unknown", None))
                hits.append(tool_failure_hit(name or tool, args, span_id, message))
                st.explained.add(template_of(message))
        for hook in self.builtins.run_hooks:
            found = hook(st)
            if found:
                hits.extend(found)
        if self.user.run_hooks:
            self.user.on_run(st, hits)
        if st.pending_exceptions:
            detectors = {h.detector for h in hits}
            for h in st.pending_exceptions:
                if h.key.partition("\x1f")[2] in st.explained:
                    continue
                if h.explained_by not in detectors:
                    hits.append(h)
        return hits
