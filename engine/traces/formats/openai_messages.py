"""Generic chat transcripts: a JSON list of OpenAI messages, ``{"messages": [...]}``, or a list of such runs.

Each transcript becomes one trace via the transcript module. A run's outcome is read
from ``outcome`` / ``reward`` / ``success`` when the producer wrote one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.traces import conventions
from engine.traces.formats.common import NO_DOCUMENT, load_keyed_document, source_name
from engine.traces.formats.stream import JsonEvents, should_stream, streaming_source_key, with_exact_retry
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
        extra[conventions.RUN_REWARD] = float(reward)
        return ("passed" if reward >= 1 else "failed"), extra
    success = run.get("success")
    if isinstance(success, bool):
        return ("passed" if success else "failed"), extra
    return None, extra


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield the spans of every transcript in the file (a big list of runs is read one run at a time)."""
    if should_stream(path):
        source = streaming_source_key(path)
        for rec in with_exact_retry(path, problems, lambda ev: _walk(ev, path)):
            if rec[0] == "skip":
                problems.skip(rec[1], rec[2], rec[3])
            else:
                yield from _run_spans(path, rec[1], rec[2], rec[3], source, problems)
        return
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
    for i, run in enumerate(runs):
        yield from _run_spans(path, i, run, len(runs) == 1, source, problems)


def _walk(ev: JsonEvents, path: Path) -> Iterator[tuple[Any, ...]]:
    """("run", index, run, only run?) per transcript; a list of runs is built one run at a time."""
    first = ev.first()
    if first is None:
        return
    if first[1] == "start_map":
        doc = ev.build(first)
        if ev.error is None:
            yield ("run", 0, doc, True)
    elif first[1] == "start_array":
        items = ev.items(first)
        head = next(items, _END)
        if head is not _END and _is_message(head):  # one transcript: its messages are the list
            messages = [head, *items]
            if ev.error is None:
                yield ("run", 0, {"messages": messages}, True)
        elif head is not _END:
            i, held = 0, head
            for i, run in enumerate(items, 1):
                yield ("run", i - 1, held, False)
                held = run
            yield ("run", i, held, i == 0)
    else:
        yield ("skip", "not_a_transcript", f"{path}:1", type(first[2]).__name__)
    if ev.error is None and ev.next() is not None:
        ev.error = (f"{path}:{ev.reader.lines + 1}", "trailing data after the document")


_END = object()


def _run_spans(path: Path, i: int, run: Any, only: bool, source: str, problems: Problems) -> Iterator[Span]:
    """The spans of the ``i``-th transcript (``only``: the file holds no other)."""
    where = f"{path}:[{i}]"
    if not isinstance(run, dict) or not isinstance(run.get("messages"), list):
        problems.skip("not_a_transcript", where)
        return
    stem = path.name.removesuffix(".gz").removesuffix(".json")
    outcome, extra = _outcome(run)
    nodeid = run.get("id") or run.get("name")
    nodeid = f"{stem}::{nodeid}" if isinstance(nodeid, (str, int)) else (stem if only else f"{stem}::{i}")
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
