"""``LLMReasoner``: the engine behind the orchestrator's ``Reasoner`` protocol.

It opens the store through the context, runs the engine to its end and hands back accepted
modes, every rejection, the answer and the totals. It never raises for the engine's own
trouble: the deterministic findings stand and one note says why. It writes one file itself,
``engine-traces.jsonl`` (the engine's own spans) into the output folder.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from engine.findings import LLMTotals
from engine.llm.engine import EngineResult, run_engine
from engine.llm.events import EngineEvent
from engine.llm.settings import EngineSettings
from engine.llm.tools.base import ToolProvider
from engine.reasoning import ReasonContext, ReasonResult
from engine.sanitize import redact

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` — in a helper thread when the caller already has a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="halo-llm")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def status_line(result: EngineResult) -> str | None:
    """The one line saying why the engine did not finish normally (None when it did)."""
    totals = result.totals
    why = redact(totals.stopped_because if totals else "unknown")
    if result.failed:
        return f"halo: LLM analysis failed ({why.removeprefix('error: ')}); the deterministic findings stand"
    if why != "finished":
        return f"halo: LLM analysis stopped early ({why.replace('_', ' ')}); kept what it had verified"
    return None


def to_reason_result(result: EngineResult) -> ReasonResult:
    notes = list(result.notes)
    line = status_line(result)
    if line:
        notes.insert(0, line)
    return ReasonResult(
        modes=list(result.modes),
        rejected=[r.model_dump(mode="json") for r in result.rejected],
        signatures=[m.signature.model_dump(mode="json") for m in result.modes if m.signature is not None],
        answer=result.answer,
        totals=result.totals.model_dump(mode="json") if result.totals else {},
        notes=notes,
    )


def engine_failed(result: ReasonResult) -> bool:
    """Whether the engine failed (not merely ran out): what ``--strict`` turns into exit 3."""
    return str(result.totals.get("stopped_because", "error")).startswith("error")


class LLMReasoner:
    name = "llm"

    def __init__(self, settings: EngineSettings, *, progress: Callable[[EngineEvent], None] | None = None,
                 providers: list[ToolProvider] | None = None) -> None:
        self.settings = settings
        self.progress = progress
        self.providers = providers
        self.last: EngineResult | None = None

    def reason(self, context: ReasonContext) -> ReasonResult:
        store = context.open_store()

        def on_event(event: EngineEvent) -> None:
            if self.progress is not None:
                self.progress(event)
            if context.on_event is not None:
                context.on_event(event.to_dict())

        result = run_sync(run_engine(self.settings, store, context.findings, tests_file=context.tests_file,
                                     out_dir=context.out_dir, on_event=on_event, providers=self.providers))
        self.last = result
        return to_reason_result(result)


def totals_line(totals: dict[str, Any]) -> str:
    """``halo: LLM <model> · N requests (C cached) · tokens in/out · $ · s`` (+ why it stopped early)."""
    if not totals:
        return "halo: LLM engine did not run"
    return "halo: " + LLMTotals.model_validate(totals).describe()
