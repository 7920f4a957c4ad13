"""``get_failure_modes`` and ``get_tests``: the deterministic findings and the tests, as the engine's starting facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from engine.llm.tools.base import Scope, ToolCallContext
from engine.sanitize import excerpt

_FAILING = ("failed", "error")


class FailureModesArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str | None = Field(None, description="only modes of this category (e.g. tool_error, loop)")
    limit: int = Field(30, ge=1, le=200)


class GetFailureModesTool:
    name = "get_failure_modes"
    description = (
        "The deterministic detectors' systemic failure modes: id, title, category, run count, prevalence, "
        "failing-test count, enrichment and evidence trace ids. Start from these facts; confirm, refine or "
        "go beyond them."
    )
    arguments: type[BaseModel] = FailureModesArguments
    scope: Scope = "all"

    async def run(self, ctx: ToolCallContext, args: FailureModesArguments) -> Any:
        f = ctx.env.findings
        modes = list(getattr(f, "failure_modes", []) or [])
        if args.category:
            modes = [m for m in modes if m.category == args.category]
        out = []
        for m in modes[: args.limit]:
            row: dict[str, Any] = {
                "id": m.id, "title": excerpt(m.title, 200), "category": m.category, "detector": m.detector,
                "run_count": m.run_count, "prevalence": m.prevalence, "test_count": m.test_count,
                "failing_test_count": m.failing_test_count,
                "evidence": [{"trace_id": e.trace_id, "span_id": e.span_id} for e in m.evidence[:5]],
            }
            if m.enrichment is not None:
                row["enrichment"] = {"failing_with": m.enrichment.failing_with, "passing_with": m.enrichment.passing_with,
                                     "q_value": m.enrichment.q_value}
            if m.example:
                row["example"] = excerpt(m.example, 300)
            if m.signature is not None:
                row["signature"] = m.signature.model_dump(exclude_none=True)
            out.append(row)
        ds = getattr(f, "dataset", None)
        return {
            "total_modes": len(modes),
            "returned": len(out),
            "runs": getattr(ds, "runs", 0),
            "run_unit": getattr(ds, "run_unit", "traces"),
            "failure_modes": out,
            "one_offs": len(getattr(f, "one_offs", []) or []),
        }


class TestsArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: list[str] | str | None = Field(None, description="passed, failed, error, skipped")
    nodeid_contains: str | None = None
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)


def read_tests(path: Path | None) -> list[dict[str, Any]]:
    """``tests.jsonl`` rows (nodeid, outcome, duration, trace_ids); bad lines are skipped."""
    if path is None or not Path(path).is_file():
        return []
    rows = []
    for line in Path(path).read_bytes().splitlines():
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("nodeid"), str):
            rows.append({"nodeid": rec["nodeid"], "outcome": str(rec.get("outcome") or "unknown"),
                         "duration": rec.get("duration"),
                         "trace_ids": [t for t in rec.get("trace_ids") or [] if isinstance(t, str)]})
    return rows


def tests_from_store(store: Any) -> list[dict[str, Any]]:
    """Tests as the spans name them (``halo.test.*``), for corpora without a tests file."""
    by: dict[str, dict[str, Any]] = {}
    for tid in store.trace_ids:
        s = store.summary(tid)
        if not s.test_nodeid:
            continue
        row = by.setdefault(s.test_nodeid, {"nodeid": s.test_nodeid, "outcome": s.test_outcome or "unknown",
                                            "duration": 0.0, "trace_ids": []})
        row["trace_ids"].append(tid)
        row["duration"] = round(row["duration"] + s.duration_ms / 1000, 3)
        if s.test_outcome in _FAILING:
            row["outcome"] = s.test_outcome
    return list(by.values())


class GetTestsTool:
    name = "get_tests"
    description = (
        "The tests (or runs) behind the traces: node id, outcome, duration and trace ids; filter by outcome "
        "(e.g. ['failed','error']) to compare failing runs with passing ones."
    )
    arguments: type[BaseModel] = TestsArguments
    scope: Scope = "all"

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] | None = None

    async def run(self, ctx: ToolCallContext, args: TestsArguments) -> Any:
        if self._rows is None:
            rows = read_tests(ctx.env.tests_file)
            if not rows and ctx.env.store is not None:
                assert ctx.env.run_blocking is not None
                rows = await ctx.env.run_blocking(lambda: tests_from_store(ctx.env.store))
            self._rows = rows
        rows = self._rows
        if args.outcome:
            wanted = {args.outcome} if isinstance(args.outcome, str) else set(args.outcome)
            rows = [r for r in rows if r["outcome"] in wanted]
        if args.nodeid_contains:
            rows = [r for r in rows if args.nodeid_contains in r["nodeid"]]
        page = rows[args.offset : args.offset + args.limit]
        counts: dict[str, int] = {}
        for r in self._rows:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        return {"total": len(rows), "outcomes": counts, "tests": [{**r, "trace_ids": r["trace_ids"][:10]} for r in page],
                "note": f"continue with offset={args.offset + len(page)}" if args.offset + len(page) < len(rows) else ""}
