"""Build agent-run traces in the OpenInference dialect with ``make_span`` — real canonical spans for detector tests."""

from __future__ import annotations

import json
from typing import Any

from engine.traces import conventions
from engine.traces.span import STATUS_ERROR, STATUS_OK, Span, make_span

T0 = 1_700_000_000_000_000_000


class Run:
    """One agent run (a trace); spans are appended in time order, 10 ms apart."""

    def __init__(self, no: int, nodeid: str | None = None, outcome: str | None = None, agent: str = "support"):
        self.no = no
        self.trace_id = f"{no + 1:032x}"
        self.nodeid = nodeid
        self.outcome = outcome
        self.t = T0 + no * 10**12
        self.spans: list[Span] = []
        self.root = self._span("agent.run", {"openinference.span.kind": "AGENT", "agent.name": agent})

    def _span(
        self,
        name: str,
        attrs: dict[str, Any],
        *,
        error: str | None = None,
        dur_ms: float = 10,
        parent: str | None = None,
    ) -> str:
        sid = f"{self.no + 1:08x}{len(self.spans) + 1:08x}"
        if self.nodeid:
            attrs = {**attrs, conventions.TEST_NODEID: self.nodeid}
            if self.outcome:
                attrs[conventions.TEST_OUTCOME] = self.outcome
        start = self.t
        self.t += int(dur_ms * 1e6) + 1000
        self.spans.append(
            make_span(
                trace_id=self.trace_id,
                span_id=sid,
                parent_span_id="" if not self.spans else (parent or self.spans[0]["span_id"]),
                name=name,
                start_ns=start,
                end_ns=start + int(dur_ms * 1e6),
                status_code=STATUS_ERROR if error else STATUS_OK,
                status_message=error or "",
                attributes=attrs,
            )
        )
        return sid

    def llm(
        self,
        text: str | None = None,
        calls: list[tuple[str, str]] = (),  # type: ignore[assignment]
        offered: dict[str, dict] | None = None,
        finish: str | None = None,
        error: str | None = None,
        model: str = "gpt-4o",
        dur_ms: float = 10,
        out_tokens: int | None = None,
    ) -> str:
        a: dict[str, Any] = {"openinference.span.kind": "LLM", "llm.model_name": model}
        a["llm.output_messages.0.message.role"] = "assistant"
        if text is not None:
            a["llm.output_messages.0.message.content"] = text
        for i, (name, args) in enumerate(calls):
            p = f"llm.output_messages.0.message.tool_calls.{i}.tool_call."
            a[p + "function.name"] = name
            a[p + "function.arguments"] = args
            a[p + "id"] = f"call_{i}"
        for i, (name, schema) in enumerate(sorted((offered or {}).items())):
            a[f"llm.tools.{i}.tool.json_schema"] = json.dumps(
                {"type": "function", "function": {"name": name, "parameters": schema}}
            )
        if finish:
            a["llm.finish_reason"] = finish
        if out_tokens is not None:
            a["llm.token_count.completion"] = out_tokens
        return self._span(f"llm {model}", a, error=error, dur_ms=dur_ms)

    def tool(self, name: str, args: str = "{}", result: str = "ok", error: str | None = None, dur_ms: float = 10) -> str:
        a = {"openinference.span.kind": "TOOL", "tool.name": name, "tool.parameters": args, "output.value": result}
        return self._span(f"tool {name}", a, error=error, dur_ms=dur_ms)

    def span(self, name: str, attrs: dict[str, Any] | None = None, error: str | None = None, etype: str | None = None) -> str:
        a = dict(attrs or {})
        if etype:
            a["exception.type"] = etype
        return self._span(name, a, error=error)

    def agent(self, name: str) -> str:
        return self._span(f"agent {name}", {"openinference.span.kind": "AGENT", "agent.name": name})

    def guardrail(self, name: str, triggered: bool = True) -> str:
        return self._span(name, {"openinference.span.kind": "GUARDRAIL", "guardrail.triggered": triggered})


def flatten(runs: list[Run]) -> list[Span]:
    return [s for r in runs for s in r.spans]
