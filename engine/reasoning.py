"""The interface between the orchestrator and anything that reasons over traces (the LLM engine).

A reasoner receives the deterministic findings and a way to reach the traces; it returns
proposed failure modes and what it spent. It never imports ``engine.analysis`` and never
writes output files: the orchestrator (``engine.run``) merges, gates and publishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from engine.findings import FailureMode, Findings


@dataclass
class ReasonContext:
    """What a reasoner may read. ``store`` opens the trace store lazily (None when it cannot be opened)."""

    paths: list[Path]
    findings: Findings
    out_dir: Path
    open_store: Callable[[], Any]
    tests_file: Path | None = None
    on_event: Callable[[dict[str, Any]], None] | None = None


@dataclass
class ReasonResult:
    """What a reasoner found and what it cost.

    ``modes`` are proposals: the orchestrator recomputes their statistics and merges them with
    the detector modes. ``rejected`` lists proposals the reasoner dropped, each ``{title, reason}``.
    ``totals`` is the cost record written under ``findings.json``'s ``llm`` key.
    """

    modes: list[FailureMode] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    signatures: list[dict[str, Any]] = field(default_factory=list)
    answer: str = ""
    totals: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class Reasoner(Protocol):
    """Anything that turns traces plus deterministic findings into proposed failure modes."""

    name: str

    def reason(self, context: ReasonContext) -> ReasonResult: ...


def check_reasoner(obj: object) -> Reasoner:
    """Refuse at registration, not mid-run, an object that does not implement ``Reasoner``."""
    if not isinstance(obj, Reasoner) or not isinstance(getattr(obj, "name", None), str):
        raise TypeError(f"{type(obj).__name__} is not a Reasoner (needs a str `name` and `reason(context)`)")
    return obj
