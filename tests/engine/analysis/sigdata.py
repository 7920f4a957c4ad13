"""Shared data for the signature tests: agent runs where a policy failure shows only in a tool's output."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from spanbuilder import Run

from engine.findings import Evidence, FailureMode, Signature
from engine.reasoning import ReasonContext, ReasonResult
from engine.signatures import signature_id

DENIED = Signature(tool_name="refund", field="output", regex=r"refund denied: policy \d+")


def runs(n: int, denied_every: int | None = 2, *, first: int = 0, card_errors: int = 0) -> list[Run]:
    """``n`` test runs; every ``denied_every``-th one gets a silent "refund denied" (and fails);
    the first ``card_errors`` runs have a failing ``pay`` tool (a detector mode)."""
    out = []
    for i in range(first, first + n):
        denied = denied_every is not None and i % denied_every == 0
        failing = denied or i - first < card_errors
        r = Run(i, nodeid=f"tests/test_agent.py::test_{i}", outcome="failed" if failing else "passed")
        r.llm(text="Let me look at that.", calls=[("refund", "{}")])
        r.tool("refund", args=f'{{"order": {i}}}', result=f"refund denied: policy {i % 7}" if denied else "refunded")
        if i - first < card_errors:
            r.tool("pay", args="{}", result="", error="PaymentError: card declined")
        r.llm(text="All done, your refund is on its way.")
        out.append(r)
    return out


def write(path: Path, rs: list[Run]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for r in rs:
            for s in r.spans:
                fh.write(orjson.dumps(s) + b"\n")
    return path


def proposal(sig: Signature | dict[str, Any], evidence: Sequence[tuple[str, str]] = (), title: str = "Refund silently denied",
             **kw: Any) -> FailureMode:
    """A mode as the LLM engine's ``final_answer`` hands it over."""
    sig = sig if isinstance(sig, Signature) else Signature(**sig)
    return FailureMode(
        id=signature_id(sig), title=title, category=kw.pop("category", "policy"), detector="llm", key="",
        evidence=[Evidence(trace_id=t, span_id=s) for t, s in evidence], signature=sig,
        description=kw.pop("description", "The agent promises a refund the tool denied."),
        confidence=kw.pop("confidence", 0.8), suggested_fix=kw.pop("suggested_fix", "Read the tool result."), **kw,
    )


class ScriptedReasoner:
    """A real ``Reasoner``: returns fixed proposals, as a model's final answer would."""

    name = "scripted"

    def __init__(self, modes: list[FailureMode], rejected: Sequence[dict[str, Any]] = ()) -> None:
        self.modes = modes
        self.rejected = list(rejected)
        self.calls = 0

    def reason(self, context: ReasonContext) -> ReasonResult:
        self.calls += 1
        assert context.open_store() is not None
        return ReasonResult(modes=[m.model_copy(deep=True) for m in self.modes], rejected=list(self.rejected))
