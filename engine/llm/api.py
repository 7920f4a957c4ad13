"""The Python API of the LLM engine: sync, async, and a stream of events.

    from engine.llm.api import analyze, analyze_async, stream

    result = analyze(["traces.jsonl"], model="gpt-4o-mini", prompt="why do refunds fail?")
    for mode in result.modes: print(mode.id, mode.title)

    async for event in stream(["traces.jsonl"], model="gpt-4o-mini"):
        print(event.kind, event.agent_id, event.data)   # the last event is run_end with data["result"]

These run the engine alone over a trace store (the deterministic findings are optional
starting facts). For detect → reason → merge → gate → publish, pass ``make_reasoner(settings)``
to ``engine.run.run_analysis``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from engine.llm.engine import EngineResult, run_engine
from engine.llm.events import EngineEvent
from engine.llm.reasoner import run_sync
from engine.llm.settings import EngineSettings

PathLike = str | os.PathLike[str]


def _settings(settings: EngineSettings | None, overrides: dict[str, Any]) -> EngineSettings:
    if settings is None:
        return EngineSettings(**overrides)
    if not overrides:
        return settings
    return EngineSettings.model_validate({**settings.model_dump(), **overrides})  # model_copy would not validate


def _store(paths: Sequence[PathLike] | Any) -> Any:
    from engine.traces.store import TraceStore

    if isinstance(paths, TraceStore):
        return paths
    return TraceStore.open([Path(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)])


async def analyze_async(
    paths: Sequence[PathLike] | Any,
    *,
    settings: EngineSettings | None = None,
    findings: Any = None,
    tests_file: PathLike | None = None,
    out_dir: PathLike | None = None,
    on_event: Callable[[EngineEvent], None] | None = None,
    **overrides: Any,
) -> EngineResult:
    """Run the engine over trace files (or an open ``TraceStore``); keyword overrides build the settings."""
    s = _settings(settings, overrides)
    store = await asyncio.to_thread(_store, paths)
    return await run_engine(s, store, findings, tests_file=Path(tests_file) if tests_file else None,
                            out_dir=Path(out_dir) if out_dir else None, on_event=on_event)


def analyze(paths: Sequence[PathLike] | Any, **kwargs: Any) -> EngineResult:
    """``analyze_async`` for synchronous callers (works inside a running event loop too)."""
    return run_sync(analyze_async(paths, **kwargs))


async def stream(paths: Sequence[PathLike] | Any, **kwargs: Any) -> AsyncIterator[EngineEvent]:
    """The run's events as they happen; the final ``run_end`` event carries ``data["result"]``."""
    queue: asyncio.Queue[EngineEvent | None] = asyncio.Queue()
    task = asyncio.create_task(analyze_async(paths, on_event=queue.put_nowait, **kwargs))
    task.add_done_callback(lambda _t: queue.put_nowait(None))
    try:
        while True:
            event = await queue.get()
            if event is None:
                break
            if event.kind == "run_end":
                continue  # re-sent below with the result attached
            yield event
        result = task.result()
        yield EngineEvent("run_end", "root", 0, {"stopped_because": result.totals.stopped_because if result.totals
                                                 else "", "result": result})
    finally:
        if not task.done():
            task.cancel()
