"""Small trace files with one systemic mode (every output gets written), for the publishing tests."""

from __future__ import annotations

from pathlib import Path

import orjson

from engine.traces import conventions
from engine.traces.span import STATUS_ERROR, make_span

T0 = 1_700_000_000_000_000_000


def failing_tool_traces(path: Path, n: int, tool: str, error: str, test_file: str,
                        arguments: str | None = None) -> Path:
    """``n`` failing tests of ``test_file`` whose ``tool`` fails with ``error`` each time: one systemic mode."""
    extra = {"tool.parameters": arguments} if arguments is not None else {}
    with open(path, "wb") as fh:
        for i in range(n):
            tid = f"{i + 1:032x}"
            attrs = {conventions.TEST_NODEID: f"tests/{test_file}::test_{i}", conventions.TEST_OUTCOME: "failed"}
            root = make_span(trace_id=tid, span_id=f"{i + 1:08x}00000001", name="agent.run", start_ns=T0 + i,
                             end_ns=T0 + i + 10, attributes={"openinference.span.kind": "AGENT", **attrs})
            span = make_span(trace_id=tid, span_id=f"{i + 1:08x}00000002", parent_span_id=root["span_id"],
                             name=f"tool {tool}", start_ns=T0 + i + 1, end_ns=T0 + i + 5, status_code=STATUS_ERROR,
                             status_message=error,
                             attributes={"openinference.span.kind": "TOOL", "tool.name": tool, **extra, **attrs})
            fh.write(orjson.dumps(root) + b"\n" + orjson.dumps(span) + b"\n")
    return path


def failing_charge_traces(path: Path, n: int = 4) -> Path:
    """``n`` failing tests whose ``charge`` tool is declined the same way."""
    return failing_tool_traces(path, n, "charge", "CardDeclined: card 4 declined", "test_pay.py")
