"""The findings file (``findings.json``, ``schema_version: 1``): what the analysis found and what the gate decided.

Pydantic at this boundary only — the plugin, the CLI, the report writers, the baseline gate
and the LLM reasoners all read and write these models; spans never pass through them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.safe_io import atomic_write_text, read_regular_bytes

SCHEMA_VERSION: Final = 1

Source = Literal["detector", "llm", "both"]
Verdict = Literal["pass", "fail"]
FailOn = Literal["new", "regressed", "any", "never"]
FAIL_ON_CHOICES: tuple[str, ...] = ("new", "regressed", "any", "never")


def mode_id(detector: str, key: str) -> str:
    """Stable id of a failure mode: a hash of what it *is* (detector + normalized key), never of where it was seen."""
    digest = hashlib.sha256(f"{detector}\x1f{key}".encode()).hexdigest()
    return f"fm-{digest[:12]}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Evidence(_Model):
    """One place a mode was seen."""

    trace_id: str
    span_id: str = ""
    test_nodeid: str | None = None


class Enrichment(_Model):
    """How much more often runs with this mode fail (one-sided Fisher exact, BH-corrected)."""

    failing_with: int
    failing_total: int
    passing_with: int
    passing_total: int
    p_value: float
    q_value: float


class Signature(_Model):
    """A checkable predicate over spans: a span matches when every given field holds.

    ``field`` names what ``regex`` is searched in: the error text, the output, the input, or
    any of them. Its normalized form hashes into the mode id (``engine.signatures``).
    """

    category: str | None = None
    tool_name: str | None = None
    span_name: str | None = None
    field: Literal["error", "output", "input", "any"] = "any"
    regex: str | None = None


class CodeLocation(_Model):
    """Where in the code under test a mode most likely lives (``path:line``, relative to the repository)."""

    path: str
    line: int
    end_line: int | None = Field(None, description="last line of the definition, when it spans several")
    kind: str = Field(description="tool_definition | agent_definition | error_literal | changed_line | ...")
    name: str = ""
    why: str = ""


class FailureMode(_Model):
    """A systemic failure mode: recurring across runs, or significantly enriched in failing runs."""

    id: str
    title: str
    category: str
    detector: str
    key: str = Field(description="the normalized key the id is hashed from")
    source: Source = "detector"
    trace_count: int = 0
    test_count: int = 0
    failing_test_count: int = 0
    run_count: int = 0
    prevalence: float = Field(0.0, description="run_count / total runs")
    systemic_because: list[str] = Field(default_factory=list)
    enrichment: Enrichment | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    example: str | None = None
    suggested_fix: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    description: str | None = Field(None, description="the LLM engine's paragraph on what happens")
    signature: Signature | None = Field(None, description="the predicate that re-finds this mode without an LLM")
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    verified: bool = Field(True, description="False: an LLM pattern no signature expresses; never gated or tracked")
    locations: list[CodeLocation] = Field(default_factory=list)
    suspected_change: str | None = Field(None, description="path:line of the change under review it is attributed to")
    root_cause: str | None = Field(None, description="id of the lead mode of the root-cause group it belongs to")


class RejectedMode(_Model):
    """A mode the LLM engine proposed and the checks refused, with why."""

    title: str
    reason: str
    round: int = 1
    signature: Signature | None = None


class LLMTotals(_Model):
    """What the LLM engine spent and why it stopped."""

    model: str
    requests: int = 0
    cached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    wall_s: float = 0.0
    stopped_because: str = "finished"

    def describe(self, model_as: Callable[[str], str] = str, text_as: Callable[[str], str] = str) -> str:
        """``LLM <model> · N requests (C cached) · in/out tokens · $ · s`` (+ why it stopped early): one line.

        The one rendering of the totals: each publisher passes its own quoting for the model name
        and the stop reason (which may quote the provider), e.g. Markdown's code span and text escape.
        """
        money = f"${self.cost_usd:.4f}" if self.cost_usd is not None else "cost unknown (no price for this model)"
        line = (f"LLM {model_as(self.model)} · {self.requests} requests ({self.cached} cached) · {self.tokens_in:,} "
                f"in / {self.tokens_out:,} out tokens · {money} · {self.wall_s:.1f}s")
        why = self.stopped_because
        return line if why == "finished" else f"{line} · stopped: {text_as(why.replace('_', ' '))}"


class OneOff(_Model):
    """A failure seen too rarely to be systemic; listed apart, never gated."""

    id: str
    title: str
    category: str
    detector: str
    key: str = ""
    trace_count: int = 0
    test_count: int = 0
    failing_test_count: int = 0
    run_count: int = 0
    prevalence: float = 0.0
    reason: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    example: str | None = None


class DatasetSummary(_Model):
    """What was analysed: sizes, the unit a "run" is, and the bad input that was skipped."""

    files: list[str] = Field(default_factory=list)
    spans: int = 0
    traces: int = 0
    tests: int = 0
    failing_tests: int = 0
    passing_tests: int = 0
    passing_test_ids: list[str] = Field(
        default_factory=list, description="node ids of the passing tests: a later gate pairs its runs with them"
    )
    run_unit: Literal["tests", "traces"] = "traces"
    runs: int = 0
    skipped: int = 0
    skipped_by_reason: dict[str, int] = Field(default_factory=dict)
    repaired_by_reason: dict[str, int] = Field(default_factory=dict)
    problem_examples: list[str] = Field(default_factory=list)


class GateEntry(_Model):
    """One mode's standing against the baseline."""

    id: str
    title: str
    baseline_runs: int = 0
    baseline_total: int = 0
    candidate_runs: int = 0
    candidate_total: int = 0
    p_value: float | None = None
    note: str = ""


class Gate(_Model):
    """The baseline comparison and the verdict under ``fail_on``."""

    baseline: str | None = None
    fail_on: FailOn = "new"
    new: list[GateEntry] = Field(default_factory=list)
    regressed: list[GateEntry] = Field(default_factory=list)
    persisting: list[GateEntry] = Field(default_factory=list)
    resolved: list[GateEntry] = Field(default_factory=list)
    emerging: list[GateEntry] = Field(
        default_factory=list,
        description="systemic now and unseen in the baseline, but the baseline was too small to call it new",
    )
    not_rerun: list[GateEntry] = Field(
        default_factory=list,
        description="systemic in the baseline and absent now because none of its evidence tests ran in this run "
        "(a run of some tests only): neither resolved nor persisting",
    )
    verdict: Verdict = "pass"
    failing_ids: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def status_by_id(self) -> dict[str, str]:
        """Each compared mode's standing ("new", "regressed", "emerging" or "persisting"), the one map every
        publisher labels modes with (resolved modes are no longer present, so they have none)."""
        status = {e.id: "persisting" for e in self.persisting}
        status.update({e.id: "emerging" for e in self.emerging})
        status.update({e.id: "regressed" for e in self.regressed})
        status.update({e.id: "new" for e in self.new})
        return status


def mode_order(m: FailureMode) -> tuple[int, int, int, str]:
    """Report order: concrete failures before bare contrastive signals, then by failing tests, runs, id."""
    return (1 if m.category == "contrastive" else 0, -m.failing_test_count, -m.run_count, m.id)


class Findings(_Model):
    """The whole findings file."""

    schema_version: Literal[1] = SCHEMA_VERSION
    tool: str = "pytest-halo"
    dataset: DatasetSummary = Field(default_factory=DatasetSummary)
    config: dict[str, Any] = Field(default_factory=dict)
    failure_modes: list[FailureMode] = Field(default_factory=list)
    one_offs: list[OneOff] = Field(default_factory=list)
    observed: dict[str, int] = Field(
        default_factory=dict, description="run counts of every signature seen (mode or not), for the next gate"
    )
    gate: Gate = Field(default_factory=Gate)
    notes: list[str] = Field(default_factory=list)
    signatures: list[Signature] = Field(
        default_factory=list, description="every accepted signature, re-applied by later analyses without an LLM"
    )
    rejected: list[RejectedMode] = Field(default_factory=list)
    llm: LLMTotals | None = None
    llm_answer: str | None = Field(None, description="the LLM engine's final Markdown answer")

    def mode(self, mode_id_: str) -> FailureMode | None:
        return next((m for m in self.failure_modes if m.id == mode_id_), None)

    def write(self, path: Path) -> None:
        """Atomically (temp file, fsync, rename): a full disk never leaves a truncated baseline behind."""
        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> Findings:
        return cls.model_validate_json(read_regular_bytes(path))  # a FIFO or device is refused, not waited on
