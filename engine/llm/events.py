"""Events the engine emits while it runs: the progress line, the API's stream and the self-trace read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal[
    "run_start",
    "agent_start",
    "agent_end",
    "model_reply",
    "model_error",
    "tool_call",
    "tool_result",
    "compaction",
    "wrap_up",
    "forced_finish",
    "final_answer",
    "correction",
    "notice",
    "run_end",
]


@dataclass
class EngineEvent:
    """One thing that happened; ``data`` holds the kind's facts (tokens, tool name, reason...)."""

    kind: EventKind
    agent_id: str = ""
    depth: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "agent_id": self.agent_id, "depth": self.depth, **self.data}
