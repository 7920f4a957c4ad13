"""The engine's own run as canonical spans (``engine-traces.jsonl``), so halo can analyse itself.

One trace per run: a root span, an agent span per agent (nested under the tool call that
spawned it), an LLM span per answered request and a tool span per tool call, with the
GenAI attribute names the normalizer already understands. Tool arguments, results and errors are
redacted before they are kept: the file lands in the output folder (often a CI artifact) and a tool
result can carry a secret read from the traces or the repository.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from engine.sanitize import redact
from engine.traces.span import KIND_INTERNAL, STATUS_ERROR, STATUS_OK, make_span

KIND_CLIENT = "SPAN_KIND_CLIENT"

FILE_NAME = "engine-traces.jsonl"


class SelfTracer:
    def __init__(self) -> None:
        self.trace_id = os.urandom(16).hex()
        self.spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @staticmethod
    def new_id() -> str:
        return os.urandom(8).hex()

    @staticmethod
    def now() -> int:
        return time.time_ns()

    def add(self, *, span_id: str, parent: str, name: str, start_ns: int, attributes: dict[str, Any],
            error: str = "", kind: str = KIND_INTERNAL) -> None:
        span = make_span(
            trace_id=self.trace_id, span_id=span_id, parent_span_id=parent, name=name, kind=kind,
            start_ns=start_ns, end_ns=self.now(), status_code=STATUS_ERROR if error else STATUS_OK,
            status_message=redact(error[:500]), attributes={k: v for k, v in attributes.items() if v is not None},
            resource_attributes={"service.name": "halo-engine"}, scope_name="engine.llm",
        )
        with self._lock:
            self.spans.append(span)

    def llm(self, parent: str, start_ns: int, model: str, tokens_in: int, tokens_out: int, cached: bool,
            agent: str, error: str = "") -> None:
        self.add(span_id=self.new_id(), parent=parent, name=f"chat {model}", start_ns=start_ns, kind=KIND_CLIENT,
                 error=error, attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                                          "gen_ai.usage.input_tokens": tokens_in,
                                          "gen_ai.usage.output_tokens": tokens_out,
                                          "gen_ai.agent.name": agent, "halo.llm.cached": cached})

    def tool(self, parent: str, start_ns: int, name: str, arguments: str, result: str, error: str = "") -> None:
        self.add(span_id=self.new_id(), parent=parent, name=f"execute_tool {name}", start_ns=start_ns, error=error,
                 attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                             "gen_ai.tool.call.arguments": redact(arguments[:2000]),
                             "gen_ai.tool.call.result": redact(result[:2000])})

    def write(self, out_dir: Path) -> Path | None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / FILE_NAME
            with self._lock:
                data = b"".join(orjson.dumps(s) + b"\n" for s in sorted(self.spans, key=lambda s: s["start_time"]))
            tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            return path
        except OSError:
            return None
