"""Generic chat transcripts: a JSON list of OpenAI messages, ``{"messages": [...]}``, or a list of such runs.

Each transcript becomes one trace via the transcript module. A run's outcome is read
from ``outcome`` / ``reward`` / ``success`` when the producer wrote one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.traces import conventions as C
from engine.traces.formats.common import NO_DOCUMENT, load_keyed_document, source_name
from engine.traces.formats.transcript import Run, spans_for_run
from engine.traces.problems import Problems
from engine.traces.span import Span

FORMAT = "openai_messages"


def _is_message(m: Any) -> bool:
    return isinstance(m, dict) and isinstance(m.get("role"), str)


def looks_like(obj: Any) -> bool:
    """A list of role-bearing messages, a ``{"messages": [...]}`` document, or a list of the latter."""
    if isinstance(obj, dict):
        return isinstance(obj.get("messages"), list)
    if isinstance(obj, list) and obj:
        return _is_message(obj[0]) or (isinstance(obj[0], dict) and isinstance(obj[0].get("messages"), list))
    return False


def _outcome(run: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    extra: dict[str, Any] = {}
    out = run.get("outcome")
    if isinstance(out, str) and out in ("passed", "failed", "skipped", "error"):
        return out, extra
    reward = run.get("reward")
    if isinstance(reward, (int, float)) and not isinstance(reward, bool):
        extra[C.RUN_REWARD] = float(reward)
        return ("passed" if reward >= 1 else "failed"), extra
    success = run.get("success")
    if isinstance(success, bool):
        return ("passed" if success else "failed"), extra
    return None, extra


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield the spans of every transcript in the file."""
    doc, source = load_keyed_document(path, problems)
    if doc is NO_DOCUMENT:
        return
    if isinstance(doc, dict):
        runs: list[Any] = [doc]
    elif isinstance(doc, list) and doc and _is_message(doc[0]):
        runs = [{"messages": doc}]
    elif isinstance(doc, list):
        runs = doc
    else:
        problems.skip("not_a_transcript", f"{path}:1", type(doc).__name__)
        return
    stem = path.name.removesuffix(".gz").removesuffix(".json")
    for i, run in enumerate(runs):
        where = f"{path}:[{i}]"
        if not isinstance(run, dict) or not isinstance(run.get("messages"), list):
            problems.skip("not_a_transcript", where)
            continue
        outcome, extra = _outcome(run)
        nodeid = run.get("id") or run.get("name")
        nodeid = f"{stem}::{nodeid}" if isinstance(nodeid, (str, int)) else (stem if len(runs) == 1 else f"{stem}::{i}")
        tools = run.get("tools") if isinstance(run.get("tools"), list) else None
        model = run.get("model") if isinstance(run.get("model"), str) else None
        yield from spans_for_run(
            Run(
                key=f"{FORMAT}|{source}|{i}",
                index=i,
                messages=run["messages"],
                source_format=FORMAT,
                batch=source_name(path),
                nodeid=nodeid,
                outcome=outcome,
                model=model,
                root_attributes=extra,
                tools_offered=tools,
            ),
            problems,
            where,
        )
