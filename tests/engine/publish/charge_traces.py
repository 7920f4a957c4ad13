"""A small trace file with one systemic mode (every output gets written), for the publishing tests."""

from __future__ import annotations

from pathlib import Path

import orjson

from engine.traces import conventions
from engine.traces.span import STATUS_ERROR, make_span

T0 = 1_700_000_000_000_000_000


def failing_charge_traces(path: Path, n: int = 4) -> Path:
    """``n`` failing tests whose ``charge`` tool fails the same way: one systemic mode, so every output is written."""
    with open(path, "wb") as fh:
        for i in range(n):
            tid = f"{i + 1:032x}"
            attrs = {conventions.TEST_NODEID: f"tests/test_pay.py::test_{i}", conventions.TEST_OUTCOME: "failed"}
            root = make_span(trace_id=tid, span_id=f"{i + 1:08x}00000001", name="agent.run", start_ns=T0 + i,
                             end_ns=T0 + i + 10, attributes={"openinference.span.kind": "AGENT", **attrs})
            tool = make_span(trace_id=tid, span_id=f"{i + 1:08x}00000002", parent_span_id=root["span_id"],
                             name="tool charge", start_ns=T0 + i + 1, end_ns=T0 + i + 5, status_code=STATUS_ERROR,
                             status_message="CardDeclined: card 4 declined",
                             attributes={"openinference.span.kind": "TOOL", "tool.name": "charge", **attrs})
            fh.write(orjson.dumps(root) + b"\n" + orjson.dumps(tool) + b"\n")
    return path
