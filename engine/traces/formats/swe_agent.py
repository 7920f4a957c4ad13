"""SWE-agent ``.traj`` files → one trace per trajectory.

Two real shapes: ``trajectory[]`` steps (``action``/``observation``/``thought``/``response``)
— each step becomes an assistant turn calling a tool named after the command's first
word, answered by the observation — or only ``history[]`` messages with ``tool_calls`` /
``tool_call_ids``, which are already a chat transcript. Outcome: ``info.exit_status``
``submitted`` → passed, anything else → failed, missing → no outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from engine.traces import conventions
from engine.traces.formats.common import NO_DOCUMENT, dict_at, load_keyed_document, source_name, str_at
from engine.traces.formats.stream import JsonEvents, should_stream, streaming_source_key, with_exact_retry
from engine.traces.formats.transcript import Run, spans_for_run
from engine.traces.problems import Problems
from engine.traces.span import Span

FORMAT = "swe_agent"


def looks_like(obj: Any) -> bool:
    """A document with ``trajectory`` steps or a ``history`` of agent messages."""
    if not isinstance(obj, dict):
        return False
    if isinstance(obj.get("trajectory"), list):
        return True
    hist = obj.get("history")
    return isinstance(hist, list) and bool(hist) and isinstance(hist[0], dict) and "agent" in hist[0]


def command_name(action: str) -> str:
    """``'edit 1:5\\n...'`` → ``'edit'`` (the tool SWE-agent ran)."""
    first = action.strip().split(None, 1)
    return first[0] if first else "noop"


def messages_from_steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Rebuild a chat transcript from ``trajectory`` steps, prefixed by the history's opening prompts."""
    msgs: list[dict[str, Any]] = []
    for m in doc.get("history") or []:
        if not isinstance(m, dict) or m.get("role") == "assistant":
            break
        if m.get("is_demo"):
            continue
        msgs.append({"role": m.get("role"), "content": m.get("content")})
    for k, step in enumerate(doc.get("trajectory") or []):
        if not isinstance(step, dict):
            continue
        action = str_at(step, "action")
        text = step.get("response") if isinstance(step.get("response"), str) else step.get("thought")
        call_id = f"step_{k}"
        msgs.append(
            {
                "role": "assistant",
                "content": text,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": command_name(action), "arguments": orjson.dumps({"command": action}).decode()},
                    }
                ],
            }
        )
        obs = step.get("observation")
        msgs.append({"role": "tool", "tool_call_id": call_id, "content": obs if obs is not None else ""})
    return msgs


def _model_name(doc: dict[str, Any]) -> str | None:
    rc = doc.get("replay_config")
    agent = rc.get("agent") if isinstance(rc, dict) else None
    model = agent.get("model") if isinstance(agent, dict) else None
    name = model.get("name") if isinstance(model, dict) else None
    return name if isinstance(name, str) else None


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield the spans of one SWE-agent trajectory (a big file keeps only the parts the conversion reads)."""
    if should_stream(path):
        source = streaming_source_key(path)
        for doc in with_exact_retry(path, problems, lambda ev: _walk(ev, path)):
            yield from _spans_of(path, doc, source, problems)
        return
    doc, source = load_keyed_document(path, problems)
    if doc is NO_DOCUMENT:
        return
    yield from _spans_of(path, doc, source, problems)


KEPT = ("trajectory", "history", "info", "replay_config")


def _walk(ev: JsonEvents, path: Path) -> Iterator[Any]:
    """The document with only ``KEPT`` keys; when ``trajectory`` steps came first, ``history`` keeps only its
    opening prompts (all ``messages_from_steps`` reads), so the repeated transcript is never held."""
    first = ev.first()
    if first is None:
        return
    if first[1] != "start_map":
        value = ev.build(first)
    else:
        value = {}
        for key, event in ev.map_entries(first):
            if key == "history" and event[1] == "start_array" and isinstance(value.get("trajectory"), list) and value["trajectory"]:
                prompts: list[Any] = []
                opening = True
                for m in ev.items(event):
                    opening = opening and isinstance(m, dict) and m.get("role") != "assistant"
                    if opening:
                        prompts.append(m)
                value[key] = prompts
            elif key in KEPT:
                value[key] = ev.build(event)
            else:
                ev.skip(event)
    if ev.error is None and ev.next() is None and ev.error is None:
        yield value
    elif ev.error is None:
        ev.error = (f"{path}:{ev.reader.lines + 1}", "trailing data after the document")


def _spans_of(path: Path, doc: Any, source: str, problems: Problems) -> Iterator[Span]:
    if not isinstance(doc, dict):
        problems.skip("not_an_object", f"{path}:1", type(doc).__name__)
        return
    if isinstance(doc.get("trajectory"), list) and doc["trajectory"]:
        messages = messages_from_steps(doc)
    elif isinstance(doc.get("history"), list):
        messages = [m for m in doc["history"] if not (isinstance(m, dict) and m.get("is_demo"))]
    else:
        problems.skip("missing_trajectory", f"{path}:1")
        return
    info = dict_at(doc, "info")
    exit_status = info.get("exit_status")
    root: dict[str, Any] = {}
    outcome = None
    if isinstance(exit_status, str) and exit_status:
        root[conventions.RUN_EXIT_STATUS] = exit_status
        outcome = "passed" if exit_status == "submitted" else "failed"
    stats = info.get("model_stats")
    if isinstance(stats, dict):
        for k in ("tokens_sent", "tokens_received", "api_calls", "instance_cost"):
            if isinstance(stats.get(k), (int, float)) and not isinstance(stats.get(k), bool):
                root[f"swe_agent.model_stats.{k}"] = stats[k]
    if isinstance(info.get("submission"), str):
        root["swe_agent.submission"] = info["submission"]
    stem = path.name.removesuffix(".gz").removesuffix(".traj")
    yield from spans_for_run(
        Run(
            key=f"{FORMAT}|{source}|0",
            index=0,
            messages=messages,
            source_format=FORMAT,
            batch=source_name(path),
            nodeid=f"swe-agent::{stem}",
            outcome=outcome,
            agent_name="swe-agent",
            model=_model_name(doc),
            root_attributes=root,
        ),
        problems,
        f"{path}:1",
    )
