"""The recursive agent loop: a root agent, depth-gated subagents, budgets, compaction, the correction round.

``run_engine`` is the whole run. Each agent is a ``Conversation`` driven by ``_AgentLoop``:
request → tool calls (in parallel) → results → request..., until the root calls
``final_answer`` (checked by ``Grounder``, corrected once) or a subagent answers in plain
text. Turn caps are per agent and never re-armed; the run budget (tokens, dollars, wall
clock) tells agents to wrap up at 80% and forces the root to finish at 100%.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from engine.findings import FailureMode, LLMTotals, RejectedMode
from engine.llm.attribution import ChangeScope, SuspectChecker
from engine.llm.budget import RunBudget, TurnCounter
from engine.llm.client import ModelClient, ModelError, ModelReply
from engine.llm.context import COMPACTION_SYSTEM, Conversation
from engine.llm.events import EngineEvent
from engine.llm.grounding import Grounder, rejection_message
from engine.llm.pricing import budget_notice, context_tokens_of
from engine.llm.prompts import root_system, starting_facts, sub_system
from engine.llm.self_trace import SelfTracer
from engine.llm.settings import EngineSettings
from engine.llm.tools.agent_tools import (
    CallSubagentTool,
    FinalAnswerArguments,
    FinalAnswerTool,
    GetContextItemTool,
    SynthesizeTracesTool,
)
from engine.llm.tools.base import (
    AgentInfo,
    ToolCallContext,
    ToolEnvironment,
    ToolError,
    ToolProvider,
    ToolRegistry,
    ToolUnavailable,
    cap_text,
    check_provider,
    schema_of,
    to_text,
    validation_message,
)
from engine.llm.tools.findings_tools import GetFailureModesTool, GetTestsTool
from engine.llm.tools.trace_tools import store_tools
from engine.sanitize import clean_line

WRAP_UP_NOTE = ("Budget notice: the run has used {pct:.0%} of its {what} budget. Wrap up now: {how}")
ROOT_WRAP = "stop exploring, wait for nothing new, and call final_answer with what you have."
SUB_WRAP = "answer your parent in plain text with what you have."
FORCED_ROOT = ("You must finish now ({why}): call final_answer with your report and the failure modes you can "
               "support with the evidence you already have. No other tool is available.")
FORCED_SUB = "You must finish now ({why}): answer your parent in plain text with what you have. No tools are available."
NO_PLAIN_END = "A plain message does not end the run: call final_answer with your report and failure modes."
SUMMARY_CAP = 1200

_PROVIDERS: list[Callable[[], ToolProvider]] = []


def register_tool_provider(factory: Callable[[], ToolProvider]) -> None:
    """Add a provider factory (called once per run) for tools built elsewhere (run_code, code/git tools).

    Registered providers serve every run; providers passed to ``run_engine`` / ``make_reasoner`` are
    added to them for that run. A provider raising ``ToolUnavailable`` costs one notice line.
    """
    if not callable(factory):
        raise TypeError("register_tool_provider needs a callable returning a ToolProvider")
    _PROVIDERS.append(factory)


@dataclass
class EngineResult:
    """What a run produced: accepted modes, every rejection, the answer, totals and one-line notes."""

    modes: list[FailureMode] = field(default_factory=list)
    rejected: list[RejectedMode] = field(default_factory=list)
    answer: str = ""
    totals: LLMTotals | None = None
    notes: list[str] = field(default_factory=list)
    failed: bool = False
    engine_trace: Path | None = None


@dataclass
class _AgentEnd:
    text: str
    reason: str
    turns: int
    final: FinalAnswerArguments | None = None


class RunState:
    """Everything shared by the agents of one run."""

    def __init__(self, settings: EngineSettings, store: Any, findings: Any, *, tests_file: Path | None,
                 out_dir: Path | None, emit: Callable[[EngineEvent], None], client: ModelClient,
                 providers: list[ToolProvider]) -> None:
        self.settings = settings
        self.store = store
        self.findings = findings
        self.emit = emit
        self.client = client
        self.budget = RunBudget(settings.max_tokens, settings.max_cost_usd, settings.timeout_s, dict(settings.prices))
        self.tracer = SelfTracer()
        self.root_span = self.tracer.new_id()
        self.semaphores = {d: asyncio.Semaphore(settings.max_parallel) for d in range(1, settings.max_depth + 1)}
        self._store_lock = threading.Lock()
        self.suspects = SuspectChecker(lambda: ChangeScope.of(settings.repo_path, settings.diff_base))
        self.grounder = Grounder(store, self.suspects) if store is not None else None
        self.rejected: list[RejectedMode] = []
        self.notes: list[str] = []
        extras: dict[str, Any] = {"repo_root": settings.repo_path} if settings.repo_path is not None else {}
        if settings.diff_base:
            extras["diff_base"] = settings.diff_base
        self.env = ToolEnvironment(store=store, settings=settings, findings=findings, tests_file=tests_file,
                                   out_dir=out_dir, complete_text=self.complete_text, run_blocking=self.run_blocking,
                                   extras=extras)
        self.registry = ToolRegistry(settings.max_depth)
        for tool in [*store_tools(store), GetFailureModesTool(), GetTestsTool(), SynthesizeTracesTool(),
                     GetContextItemTool(), CallSubagentTool(), FinalAnswerTool()]:
            self.registry.add(tool)
        for provider in providers:
            try:
                offered = provider.tools(self.env)
            except ToolUnavailable as exc:
                self.notice(f"{provider.name} unavailable: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - a broken provider costs its tools, not the run
                self.notice(f"{provider.name} unavailable: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            for tool in offered:
                try:
                    self.registry.add(tool)
                except (TypeError, ValueError) as exc:
                    self.notice(f"{provider.name}: tool skipped: {exc}")
        line = budget_notice(settings)
        if line:
            self.notice(line)
            self.notes.append(line)

    def notice(self, message: str) -> None:
        self.emit(EngineEvent("notice", data={"message": message}))

    async def run_blocking(self, fn: Callable[[], Any]) -> Any:
        def locked() -> Any:
            with self._store_lock:
                return fn()

        return await asyncio.to_thread(locked)

    async def request(self, agent: AgentInfo, span: str, model: str, messages: list[dict[str, Any]],
                      tools: list[dict[str, Any]] | None = None, *, tool_choice: Any = None,
                      max_tokens: int | None = None, reasoning: bool = True) -> ModelReply:
        """One answered request (retries inside), counted against the budget and traced."""
        req = self.client.build_request(model, messages, tools, tool_choice=tool_choice, max_tokens=max_tokens,
                                        reasoning=reasoning)
        start = self.tracer.now()
        try:
            reply = await self.client.complete(req)
        except ModelError as exc:
            self.tracer.llm(span, start, model, 0, 0, False, agent.agent_id, error=str(exc))
            self.emit(EngineEvent("model_error", agent.agent_id, agent.depth, {"error": str(exc)}))
            raise
        self.budget.record(model, reply.tokens_in, reply.tokens_out, cached=reply.cached)
        self.tracer.llm(span, start, model, reply.tokens_in, reply.tokens_out, reply.cached, agent.agent_id)
        cost = None if self.budget.unpriced_models and not self.budget.cost_usd else self.budget.cost_usd
        self.emit(EngineEvent("model_reply", agent.agent_id, agent.depth, {
            "model": model, "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out, "cached": reply.cached,
            "tool_calls": [c.name for c in reply.tool_calls], "run_tokens": self.budget.tokens,
            "run_cost_usd": cost}))
        return reply

    async def complete_text(self, system: str, user: str, max_tokens: int) -> str:
        """The synthesis model on a plain prompt (synthesize_traces, llm_query)."""
        if self.budget.exhausted():
            raise ToolError("the run budget is exhausted; no more model calls")
        agent = AgentInfo("synthesis", 0, False)
        reply = await self.request(agent, self.root_span, self.settings.synth_model,
                                   [{"role": "system", "content": system}, {"role": "user", "content": user}],
                                   max_tokens=max_tokens, reasoning=False)
        return reply.content.strip()

    async def summarize(self, text: str) -> str | None:
        """A compaction summary, or None (the caller falls back to a deterministic excerpt)."""
        model = self.settings.compact_model
        if model is None or self.budget.exhausted():
            return None
        try:
            reply = await self.request(AgentInfo("compaction", 0, False), self.root_span, model,
                                       [{"role": "system", "content": COMPACTION_SYSTEM},
                                        {"role": "user", "content": text}], max_tokens=300, reasoning=False)
        except ModelError:
            return None
        return reply.content.strip()[:SUMMARY_CAP] or None

    def threshold_tokens(self, model: str) -> int:
        s = self.settings
        window = s.context_tokens or context_tokens_of(model, s.context_sizes)
        return int(window * s.compaction_threshold)


class _AgentLoop:
    def __init__(self, run: RunState, info: AgentInfo, convo: Conversation, model: str, parent_span: str) -> None:
        self.run = run
        self.info = info
        self.convo = convo
        self.model = model
        self.turns = TurnCounter(run.settings.max_turns)
        self.span = run.tracer.new_id()
        self.parent_span = parent_span
        self.wrapped = False
        self.corrected = False
        self.accepted: list[FailureMode] = []
        self.final: FinalAnswerArguments | None = None
        self.forced_why: str | None = None
        self._children = 0

    # ------------------------------------------------------------------ helpers
    def tool_schemas(self, forced: bool) -> list[dict[str, Any]]:
        """The tools offered; a forced root sees only ``final_answer``. (A forced subagent keeps its list —
        some providers refuse a history of tool calls without tool definitions — under ``tool_choice: none``.)"""
        if forced and self.info.is_root:
            return [schema_of(self.run.registry.tools["final_answer"])]
        return [schema_of(t) for t in self.run.registry.for_agent(self.info)]

    async def spawn(self, question: str) -> dict[str, Any]:
        """Run a child agent one level down; its failure is a result, never an exception."""
        run = self.run
        depth = self.info.depth + 1
        if depth > run.settings.max_depth:
            return {"error": f"no subagents below depth {run.settings.max_depth}"}
        self._children += 1
        child_id = f"{self.info.agent_id}.{self._children}"  # stable across reruns (the cache needs it)
        async with run.semaphores[depth]:
            child = AgentInfo(child_id, depth, False)
            convo = Conversation(sub_system(run.settings, depth), question)
            loop = _AgentLoop(run, child, convo, run.settings.sub_model, self.span)
            try:
                end = await loop.run_agent()
            except Exception as exc:  # noqa: BLE001 - a child's failure is its parent's tool result
                return {"child_agent_id": child.agent_id, "error": f"subagent failed: {type(exc).__name__}: {exc}"}
        return {"child_agent_id": child.agent_id, "answer": end.text, "turns_used": end.turns,
                "stopped_because": end.reason}

    # ------------------------------------------------------------------ the loop
    async def run_agent(self) -> _AgentEnd:
        run, info = self.run, self.info
        start = run.tracer.now()
        run.emit(EngineEvent("agent_start", info.agent_id, info.depth, {"model": self.model}))
        end: _AgentEnd | None = None
        error = ""
        try:
            end = await self._loop()
            return end
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            reason = end.reason if end else "error"
            run.emit(EngineEvent("agent_end", info.agent_id, info.depth, {"reason": reason, "turns": self.turns.used}))
            run.tracer.add(span_id=self.span, parent=self.parent_span, name=f"agent {info.agent_id}", start_ns=start,
                           error=error, attributes={"gen_ai.agent.name": info.agent_id, "gen_ai.operation.name":
                                                    "invoke_agent", "halo.agent.depth": info.depth,
                                                    "halo.agent.turns": self.turns.used,
                                                    "halo.agent.stopped_because": reason})

    def _last_text(self) -> str:
        for m in reversed(self.convo.messages):
            if m["role"] == "assistant" and isinstance(m.get("content"), str) and m["content"].strip():
                return m["content"].strip()
        return ""

    async def _loop(self) -> _AgentEnd:
        run, info = self.run, self.info
        while True:
            if self.turns.left == 0:
                return self._end("max_turns")
            forced_why = None
            exhausted = run.budget.exhausted()
            if exhausted:
                if not info.is_root:
                    return self._end(exhausted)
                forced_why = exhausted
            elif self.turns.left == 1:
                forced_why = "max_turns"
            if forced_why is None and not self.wrapped and run.budget.wrap_up():
                self.wrapped = True
                shares = run.budget.shares()
                what = max(shares, key=lambda k: shares[k])
                self.convo.add({"role": "user", "content": WRAP_UP_NOTE.format(
                    pct=shares[what], what=what.replace("max_", ""), how=ROOT_WRAP if info.is_root else SUB_WRAP)})
                run.emit(EngineEvent("wrap_up", info.agent_id, info.depth, {"why": what}))
            if forced_why is not None:
                self.forced_why = forced_why
                self.convo.add({"role": "user", "content": (FORCED_ROOT if info.is_root else FORCED_SUB).format(
                    why=forced_why.replace("_", " "))})
                run.emit(EngineEvent("forced_finish", info.agent_id, info.depth, {"why": forced_why}))
            tools = self.tool_schemas(forced_why is not None)
            await self._maybe_compact(tools)
            choice: Any = None
            if forced_why is not None:
                choice = {"type": "function", "function": {"name": "final_answer"}} if info.is_root else "none"
            reply = await run.request(info, self.span, self.model, list(self.convo.messages), tools,
                                      tool_choice=choice)
            for _ in range(run.settings.refusal_retries):  # a refusal is retried, not counted as a turn
                if not reply.refusal or reply.tool_calls:
                    break
                reply = await run.request(info, self.span, self.model, list(self.convo.messages), tools,
                                          tool_choice=choice)
            self.turns.take()
            sent = len(orjson.dumps(self.convo.messages)) + (len(orjson.dumps(tools)) if tools else 0)
            self.convo.observe(sent, reply.tokens_in)
            self.convo.add(reply.assistant_message())
            if not reply.tool_calls:
                if not info.is_root:
                    return self._end("answered" if forced_why is None else forced_why, reply.content.strip())
                if forced_why is not None:
                    return self._end(forced_why, reply.content.strip())
                self.convo.add({"role": "user", "content": NO_PLAIN_END})
                continue
            done = await self._tool_calls(reply, forced=forced_why is not None)
            if done is not None:
                return done
            if forced_why is not None and info.is_root:
                return self._end(forced_why)

    def _end(self, reason: str, text: str = "") -> _AgentEnd:
        return _AgentEnd(text=text or self._last_text() or f"(stopped: {reason}, no answer)", reason=reason,
                         turns=self.turns.used, final=self.final)

    async def _maybe_compact(self, tools: list[dict[str, Any]] | None) -> None:
        run = self.run
        got = await self.convo.compact(run.threshold_tokens(self.model), tools, run.settings.keep_recent_results,
                                       run.summarize)
        if got is not None:
            items, before, after = got
            run.emit(EngineEvent("compaction", self.info.agent_id, self.info.depth,
                                 {"items": items, "before": before, "after": after}))

    async def _tool_calls(self, reply: ModelReply, *, forced: bool) -> _AgentEnd | None:
        """Run the reply's tool calls (in parallel); ``final_answer`` last. Returns an end when the run is over."""
        finals = [c for c in reply.tool_calls if c.name == "final_answer" and self.info.is_root]
        others = [c for c in reply.tool_calls if not (c.name == "final_answer" and self.info.is_root)]
        results = await asyncio.gather(*(self._one_call(c.id, c.name, c.arguments, forced) for c in others))
        for call, text in zip(others, results, strict=True):
            self.convo.add({"role": "tool", "tool_call_id": call.id, "content": text})
        end: _AgentEnd | None = None
        for i, call in enumerate(finals):
            if i > 0 or end is not None:
                self.convo.add({"role": "tool", "tool_call_id": call.id, "content": "ignored: one final_answer per turn"})
                continue
            text, end = await self._final_answer(call.arguments)
            self.convo.add({"role": "tool", "tool_call_id": call.id, "content": text})
        return end

    async def _one_call(self, call_id: str, name: str, raw: str, forced: bool) -> str:
        run, info = self.run, self.info
        start = run.tracer.now()
        run.emit(EngineEvent("tool_call", info.agent_id, info.depth, {"tool": name}))
        error = ""
        try:
            tool = None if forced else run.registry.get(name, info)
            if tool is None:
                names = ", ".join(t.name for t in run.registry.for_agent(info))
                raise ToolError(f"unknown or unavailable tool {name!r}; available: {names}")
            try:
                data = orjson.loads(raw or "{}")
            except orjson.JSONDecodeError as exc:
                raise ToolError(f"arguments for {name} are not valid JSON ({exc}); send one JSON object") from None
            if not isinstance(data, dict):
                raise ToolError(f"arguments for {name} must be a JSON object")
            try:
                args = tool.arguments.model_validate(data)
            except ValidationError as exc:
                raise ToolError(validation_message(name, exc)) from None
            ctx = ToolCallContext(agent=info, env=run.env, context_item=self.convo.item,
                                  spawn=self.spawn if info.depth < run.settings.max_depth else None)
            text = to_text(await tool.run(ctx, args))
        except ToolError as exc:
            error = str(exc)
            text = f"error: {error}"
        except Exception as exc:  # noqa: BLE001 - a broken tool is the model's problem to route around
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
            text = f"error: tool {name} failed: {error}"
        text = cap_text(text, run.settings.tool_result_bytes)
        run.tracer.tool(self.span, start, name, raw or "", text, error=error)
        run.emit(EngineEvent("tool_result", info.agent_id, info.depth, {"tool": name, "ok": not error,
                                                                        "bytes": len(text)}))
        return text

    async def _final_answer(self, raw: str) -> tuple[str, _AgentEnd | None]:
        """Check the proposed modes; one correction round, then accept what holds."""
        run = self.run
        try:
            args = FinalAnswerArguments.model_validate(orjson.loads(raw or "{}"))
        except orjson.JSONDecodeError as exc:
            return f"error: final_answer arguments are not valid JSON ({exc}); call it again", None
        except ValidationError as exc:
            return "error: " + validation_message("final_answer", exc), None
        round_no = 2 if self.corrected else 1
        if run.grounder is None:
            run.notes.append("trace store unavailable: failure modes could not be checked and were dropped")
            checked_accepted: list[FailureMode] = []
            rejected = [RejectedMode(title=m.title[:200], reason="trace store unavailable", round=round_no)
                        for m in args.failure_modes]
            notes: list[str] = []
        else:
            grounder = run.grounder  # a whole-store signature scan: off the event loop, behind the store lock
            out = await run.run_blocking(lambda: grounder.check(args.failure_modes, round_no))
            checked_accepted, rejected, notes = out.accepted, out.rejected, out.notes
        run.notes.extend(notes)
        run.rejected.extend(rejected)
        ids = {m.id for m in self.accepted}
        self.accepted.extend(m for m in checked_accepted if m.id not in ids)
        if args.answer.strip() or self.final is None:
            self.final = FinalAnswerArguments(answer=args.answer or (self.final.answer if self.final else ""),
                                              failure_modes=[])
        run.emit(EngineEvent("final_answer", self.info.agent_id, 0, {"modes": len(args.failure_modes),
                                                                     "accepted": len(checked_accepted),
                                                                     "rejected": len(rejected), "round": round_no}))
        if rejected and not self.corrected and self.turns.left > 0 and not run.budget.exhausted():
            self.corrected = True
            run.emit(EngineEvent("correction", self.info.agent_id, 0, {"rejected": len(rejected)}))
            return rejection_message(rejected, checked_accepted), None
        return "accepted", _AgentEnd(text=self.final.answer, reason=self.forced_why or "finished", turns=self.turns.used,
                                     final=self.final)


def _builtin_providers(settings: EngineSettings) -> list[ToolProvider]:
    """``run_code`` over the sandbox (it offers the tool, or says in one notice why it cannot)."""
    if not settings.run_code:
        return []
    from engine.llm.tools.run_code import RunCodeProvider

    return [check_provider(RunCodeProvider())]


def _tool_providers() -> list[ToolProvider]:
    out = []
    for factory in _PROVIDERS:
        out.append(check_provider(factory()))
    return out


async def run_engine(
    settings: EngineSettings,
    store: Any,
    findings: Any = None,
    *,
    tests_file: Path | None = None,
    out_dir: Path | None = None,
    on_event: Callable[[EngineEvent], None] | None = None,
    providers: list[ToolProvider] | None = None,
    client: ModelClient | None = None,
) -> EngineResult:
    """Run the root agent to its end; never raises for model or budget trouble (see ``failed``/``notes``)."""
    t0 = time.monotonic()

    def emit(event: EngineEvent) -> None:
        if on_event is not None:
            try:
                on_event(event)
            except Exception:  # noqa: BLE001 - a broken listener must not stop the run
                pass

    own_client = client is None
    t0_ns = time.time_ns()
    result = EngineResult()
    stopped = "finished"
    provs: list[ToolProvider] = []
    run: RunState | None = None
    try:
        client = client or ModelClient(settings)
        provs = _builtin_providers(settings) + _tool_providers() + [check_provider(p) for p in providers or []]
        run = RunState(settings, store, findings, tests_file=tests_file, out_dir=out_dir, emit=emit, client=client,
                   providers=provs)
        if settings.timeout_s:  # retries never wait past the run's wall-clock budget
            client.deadline = run.budget.started + settings.timeout_s
        emit(EngineEvent("run_start", "root", 0, {"model": settings.root_model, "max_depth": settings.max_depth}))
        root = _AgentLoop(run, AgentInfo("root", 0, True),
                          Conversation(root_system(settings), _first_message(settings, findings)),
                          settings.root_model, run.root_span)
        try:
            end = await root.run_agent()
            stopped = end.reason
            result.answer = end.final.answer if end.final else end.text
            if end.final is None:
                run.notes.append(f"LLM engine stopped ({end.reason.replace('_', ' ')}) before a final answer")
        except Exception as exc:  # noqa: BLE001 - what the root verified so far still stands
            why = _failure(exc)
            stopped = f"error: {why}"
            result.failed = True
            run.notes.append(f"LLM engine failed: {why}")
            result.answer = root.final.answer if root.final else ""
        result.modes = root.accepted
        result.rejected = list(run.rejected)
        dropped = run.suspects.note()
        if dropped:
            run.notes.append(dropped)
        result.notes = list(dict.fromkeys(run.notes))
    except Exception as exc:  # noqa: BLE001 - a run that cannot start leaves the deterministic findings
        why = _failure(exc)
        stopped = f"error: {why}"
        result.failed = True
        result.notes = [f"LLM engine failed: {why}"]
    finally:
        for p in provs:
            try:
                await p.close()
            except Exception:  # noqa: BLE001
                pass
        if own_client and client is not None:
            await client.close()
    if run is None:
        result.totals = LLMTotals(model=settings.root_model, wall_s=round(time.monotonic() - t0, 3),
                                  stopped_because=stopped)
    else:
        spend = run.budget.spend
        result.totals = LLMTotals(
            model=settings.root_model, requests=spend.requests, cached=spend.cached, tokens_in=spend.tokens_in,
            tokens_out=spend.tokens_out, cost_usd=round(spend.cost_usd, 6) if spend.cost_known else None,
            wall_s=round(time.monotonic() - t0, 3), stopped_because=stopped,
        )
        run.tracer.add(span_id=run.root_span, parent="", name="halo.engine.run", start_ns=t0_ns,
                       error=stopped if result.failed else "",
                       attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "halo-engine",
                                   "halo.engine.stopped_because": stopped, "halo.engine.requests": spend.requests,
                                   "halo.engine.cached": spend.cached})
        if out_dir is not None:
            result.engine_trace = run.tracer.write(Path(out_dir))
    emit(EngineEvent("run_end", "root", 0, {"stopped_because": stopped, "modes": len(result.modes),
                                            "rejected": len(result.rejected)}))
    return result


def _failure(exc: Exception) -> str:
    """One clean line for the notes and totals: a provider's own message (its text is untrusted and reaches
    the terminal), or our bug's type and first line."""
    if isinstance(exc, ModelError):
        return clean_line(str(exc))
    return clean_line(f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}")


def _first_message(settings: EngineSettings, findings: Any) -> str:
    return f"{settings.prompt}\n\nStarting facts (from the deterministic analysis):\n{starting_facts(findings)}"
