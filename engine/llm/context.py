"""One agent's conversation, with rolling compaction during the run.

Every message gets an item id (``ctx-N``). When the conversation grows past the threshold
(a share of the model's context window), older tool results — then older long assistant
texts — are replaced by short summaries that name their id; ``get_context_item`` returns the
original. The newest ``keep_recent`` tool results are never compacted.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

MIN_COMPACT_CHARS = 600
EXCERPT_CHARS = 400
_IDS = re.compile(r"\b[0-9a-f]{32}\b|\b[0-9a-f]{16}\b")

COMPACTION_SYSTEM = (
    "Summarize this tool result for an agent that is analysing agent traces and will not see the original "
    "again. Keep every trace id, span id, tool name, count and exact error text that matters; at most 120 words."
)


def estimate_tokens(obj: Any, tokens_per_byte: float = 0.25) -> int:
    """Serialized bytes × tokens per byte (¼ until the provider's usage says otherwise; no tokenizer)."""
    return int(len(orjson.dumps(obj)) * tokens_per_byte) + 1


def excerpt_summary(text: str) -> str:
    """The deterministic stand-in for a summary: the head of the text and the ids it names."""
    head = " ".join(text[:EXCERPT_CHARS].split())
    ids = list(dict.fromkeys(_IDS.findall(text)))[:20]
    tail = f" ids: {', '.join(ids)}" if ids else ""
    return f"{head}…{tail}"


class Conversation:
    """Messages as sent to the model plus the originals of what compaction replaced."""

    def __init__(self, system: str, user: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.originals: dict[str, str] = {}
        self._n = 0
        self.tokens_per_byte = 0.25  # learned from the provider's prompt_tokens (JSON often runs denser)
        self.add({"role": "system", "content": system})
        self.add({"role": "user", "content": user})

    def add(self, message: dict[str, Any]) -> str:
        item_id = f"ctx-{self._n}"
        self._n += 1
        self.messages.append(message)
        self.ids.append(item_id)
        return item_id

    def item(self, item_id: str) -> str | None:
        if item_id in self.originals:
            return self.originals[item_id]
        try:
            msg = self.messages[self.ids.index(item_id)]
        except ValueError:
            return None
        content = msg.get("content")
        return content if isinstance(content, str) else orjson.dumps(msg).decode()

    def tokens(self, tools: list[dict[str, Any]] | None = None) -> int:
        r = self.tokens_per_byte
        return estimate_tokens(self.messages, r) + (estimate_tokens(tools, r) if tools else 0)

    def observe(self, request_bytes: int, prompt_tokens: int) -> None:
        """Calibrate the estimate on what the provider counted for a request of ``request_bytes``."""
        if request_bytes > 0 and prompt_tokens > 0:
            self.tokens_per_byte = max(0.25, min(1.0, prompt_tokens / request_bytes))

    def candidates(self, keep_recent: int) -> list[int]:
        """Indexes of messages compaction may replace: old tool results first, then old long assistant texts."""
        tool_idx = [i for i, m in enumerate(self.messages) if m["role"] == "tool"]
        protected = set(tool_idx[len(tool_idx) - keep_recent :]) if keep_recent else set()
        last_user = max((i for i, m in enumerate(self.messages) if m["role"] == "user"), default=0)
        tools = [i for i in tool_idx if i not in protected and self._compactable(i)]
        texts = [i for i, m in enumerate(self.messages[:-2]) if m["role"] == "assistant" and i < last_user
                 and self._compactable(i)]
        return tools + texts

    def _compactable(self, i: int) -> bool:
        c = self.messages[i].get("content")
        return isinstance(c, str) and len(c) > MIN_COMPACT_CHARS and self.ids[i] not in self.originals

    def replace(self, i: int, summary: str) -> None:
        item_id = self.ids[i]
        msg = self.messages[i]
        self.originals[item_id] = msg["content"]
        label = "tool result" if msg["role"] == "tool" else "message"
        self.messages[i] = {**msg, "content": f"[compacted {label} {item_id}] {summary} "
                            f"(get_context_item(item_id='{item_id}') returns the original)"}

    async def compact(
        self,
        threshold_tokens: int,
        tools: list[dict[str, Any]] | None,
        keep_recent: int,
        summarize: Callable[[str], Awaitable[str | None]] | None,
    ) -> tuple[int, int, int] | None:
        """Compact until under ``threshold_tokens`` (or nothing is left); returns (items, before, after)."""
        before = self.tokens(tools)
        if before <= threshold_tokens:
            return None
        done = 0
        pending = self.candidates(keep_recent)
        while pending and self.tokens(tools) > threshold_tokens:
            batch, pending = pending[:8], pending[8:]
            summaries: list[str | None] = [None] * len(batch)
            if summarize is not None:
                summaries = list(await asyncio.gather(*(summarize(self.messages[i]["content"]) for i in batch)))
            for i, summary in zip(batch, summaries, strict=True):
                self.replace(i, summary or excerpt_summary(self.messages[i]["content"]))
                done += 1
        return (done, before, self.tokens(tools)) if done else None
