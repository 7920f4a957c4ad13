"""What detectors produce (``Hit``) and the compact per-trace state they read and write."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec


@dataclass(slots=True)
class Hit:
    """One occurrence of a failure signature in one span.

    ``detector`` + ``key`` identify the failure mode (and hash into its id); ``title`` must be
    a function of the key only, so the same mode always reads the same.
    """

    detector: str
    key: str
    title: str
    category: str
    span_id: str = ""
    example: str | None = None
    suggested_fix: str | None = None
    detail: tuple[str, str] | None = None  # (name, value) collected into the mode's details
    explained_by: str | None = None  # drop this hit if the run also has a hit of that detector


class ToolExec(msgspec.Struct, gc=False, array_like=True):
    """A tool execution (or, when no tool spans exist, a requested call) in a run.

    A ``msgspec.Struct`` rather than a dataclass: one is built per tool span, and its C-level
    ``__init__`` costs a third of a dataclass's (acyclic, so no GC tracking either). Packed
    (``engine.analysis.cold``) as an array of its fields, without their names.
    """

    start: str  # canonical ISO time: fixed width, so it sorts like the instant
    span_id: str
    tool: str
    arguments: str | None
    is_error: bool
    template: str = ""


@dataclass
class TraceState:
    """Everything per-trace detectors need, kept small: no raw spans are retained."""

    trace_id: str
    nodeid: str | None = None
    outcome: str | None = None
    hits: list[Hit] = field(default_factory=list)
    tools: list[ToolExec] = field(default_factory=list)
    requested: list[ToolExec] = field(default_factory=list)
    final_turn: tuple[str, str, str | None, int, bool] | None = None  # latest LLM call: LlmTurn fields as a tuple
    agents: list[tuple[str, str, str]] = field(default_factory=list)  # (start time, span_id, agent)
    schemas: dict[str, Any] = field(default_factory=dict)  # tool -> JSON schema, from tools offered
    refusals: int = 0

    def llm_turn(self, end: str, span_id: str, text: str | None, n_calls: int, is_error: bool) -> None:
        """Keep only the run's last LLM call: all the empty-final-output check needs."""
        f = self.final_turn
        if f is None or end > f[0] or (end == f[0] and span_id > f[1]):
            self.final_turn = (end, span_id, text, n_calls, is_error)
    explained: set[str] = field(default_factory=set)  # error templates a specific detector claimed
    # tool errors seen only in LLM input messages (call id or text -> (call id, tool, span_id, message));
    # reported when the run has no tool spans of its own to report them
    input_tool_errors: dict[str, tuple[str | None, str | None, str, str]] = field(default_factory=dict)
    call_names: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # call id -> (tool, arguments)
    pending_exceptions: list[Hit] = field(default_factory=list)  # kept unless explained by the end

    # ---- read-only conveniences for detectors (``engine.analysis.detectors.api``)
    @property
    def final_output(self) -> str | None:
        """The text of the run's last LLM call (None when there was none or it recorded no text)."""
        return self.final_turn[2] if self.final_turn is not None else None

    @property
    def final_span_id(self) -> str:
        return self.final_turn[1] if self.final_turn is not None else ""

    def called(self, tool: str) -> bool:
        """Did the run execute (or, without tool spans, request) a call to ``tool``?"""
        return any(t.tool == tool for t in self.tools) or any(t.tool == tool for t in self.requested)
