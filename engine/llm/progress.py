"""Live progress of an engine run: agents alive, depth, tool calls, tokens, cost.

On a TTY one line is redrawn in place (throttled); otherwise a line is printed when
something a person would care about happens (an agent starts or ends, a compaction, a
budget warning), never one per token. A notice (a tool left out, a budget that cannot be
enforced) is a line of its own even on a TTY, and is printed once however often it is sent.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from engine.llm.events import EngineEvent
from engine.sanitize import clean

_PLAIN_KINDS = frozenset({"agent_start", "agent_end", "compaction", "wrap_up", "forced_finish", "correction",
                          "notice", "final_answer", "run_end", "model_error"})


class ProgressReporter:
    """Callable on ``EngineEvent``s; writes to ``stream`` (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, interval_s: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval_s = interval_s
        self.alive: dict[str, int] = {}
        self.max_depth = 0
        self.tool_calls = 0
        self.requests = 0
        self.tokens = 0
        self.cost: float | None = 0.0
        self._last = 0.0
        self._notices: set[str] = set()

    def __call__(self, event: EngineEvent) -> None:
        if event.kind == "notice":
            message = str(event.data.get("message", ""))
            if message in self._notices:
                return
            self._notices.add(message)
            if self.tty:
                self.stream.write("\r\x1b[2K" + clean(f"halo: LLM {message[:300]}") + "\n")
                self.stream.flush()
                return
        self.update(event)
        if self.tty:
            now = time.monotonic()
            if event.kind == "run_end" or now - self._last >= self.interval_s:
                self._last = now
                end = "\n" if event.kind == "run_end" else ""
                self.stream.write("\r\x1b[2K" + self.line() + end)
                self.stream.flush()
        elif event.kind in _PLAIN_KINDS:
            self.stream.write(self.line(event) + "\n")
            self.stream.flush()

    def update(self, event: EngineEvent) -> None:
        d = event.data
        if event.kind == "agent_start":
            self.alive[event.agent_id] = event.depth
            self.max_depth = max(self.max_depth, event.depth)
        elif event.kind == "agent_end":
            self.alive.pop(event.agent_id, None)
        elif event.kind == "tool_call":
            self.tool_calls += 1
        elif event.kind == "model_reply":
            self.requests += 1
            self.tokens = int(d.get("run_tokens", self.tokens))
            cost = d.get("run_cost_usd")
            self.cost = float(cost) if cost is not None else None

    def line(self, event: EngineEvent | None = None) -> str:
        depth = max(self.alive.values(), default=0)
        cost = f"${self.cost:.4f}" if self.cost is not None else "$?"
        head = (f"halo: LLM agents {len(self.alive)} · depth {depth}/{self.max_depth} · requests {self.requests} · "
                f"tools {self.tool_calls} · tokens {self.tokens:,} · {cost}")
        if event is None or self.tty:
            return head
        what = _describe(event)
        return clean(f"{head} · {what}" if what else head)


def _describe(event: EngineEvent) -> str:
    d: dict[str, Any] = event.data
    who = f"{event.agent_id}@{event.depth}"
    if event.kind == "agent_start":
        return f"{who} started"
    if event.kind == "agent_end":
        return f"{who} ended ({d.get('reason', 'done')})"
    if event.kind == "compaction":
        return f"{who} compacted {d.get('items', 0)} tool results ({d.get('before', 0):,}→{d.get('after', 0):,} tokens)"
    if event.kind == "wrap_up":
        return f"{who} told to wrap up ({d.get('why', '')})"
    if event.kind == "forced_finish":
        return f"{who} forced to finish ({d.get('why', '')})"
    if event.kind == "correction":
        return f"correction round: {d.get('rejected', 0)} modes rejected"
    if event.kind == "final_answer":
        return f"final answer with {d.get('modes', 0)} modes"
    if event.kind == "model_error":
        return f"{who} model error: {str(d.get('error', ''))[:160]}"
    if event.kind == "notice":
        return str(d.get("message", ""))[:200]
    if event.kind == "run_end":
        return f"stopped: {d.get('stopped_because', '')}"
    return ""
