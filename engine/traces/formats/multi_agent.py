"""Multi-agent conversation logs (Magentic-One / AutoGen group chats) → one trace per log, one span per message.

The shape (e.g. the Who&When failure-attribution dataset): ``{"history": [{"content", "role",
"name"?}, ...], "is_correct" | "is_corrected": bool, "question", "ground_truth" | "groundtruth",
"question_ID", "mistake_agent", "mistake_step", "mistake_reason", "system_prompt": {agent: text}}``.
The speaking agent is ``name`` when present (AutoGen: role ``user``/``assistant`` is only the
chat-API side), else the ``role`` itself (Magentic-One: ``Orchestrator (thought)``,
``Orchestrator (-> WebSurfer)``, ``WebSurfer``, ``human``). Each message becomes an LLM span of
the agent that wrote it (its output is the message); a human's message is a chain span. The
correctness flag is the run's outcome; the failure annotation is kept on the root span. A Python
traceback logged inside a message (the logs capture the run's stderr) makes that span an error
with the traceback's exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.traces import conventions
from engine.traces.formats.common import (
    NO_DOCUMENT,
    SYNTHETIC_EPOCH_NS,
    SYNTHETIC_TIME,
    flatten_into,
    load_keyed_document,
    source_name,
    stable_hex,
    to_text,
)
from engine.traces.problems import Problems
from engine.traces.span import STATUS_ERROR, STATUS_OK, STATUS_UNSET, Span, make_span

FORMAT = "multi_agent"
CHAT_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
HUMAN_ROLES = frozenset({"human", "user"})
OUTCOME_KEYS = ("is_correct", "is_corrected", "correct", "success")
_ROLE_RX = re.compile(r"^\s*(?P<agent>[^()]*?)\s*\((?P<note>[^()]*)\)\s*$")
TRACEBACK = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*):\s?(?P<message>.*)$")
STEP_NS = 1_000_000_000


def _messages(obj: dict[str, Any]) -> list[Any]:
    hist = obj.get("history")
    return hist if isinstance(hist, list) else []


def looks_like(obj: Any) -> bool:
    """A ``history`` of ``content`` messages whose speakers are agents: named, not chat-API roles, or a
    run with a correctness flag (SWE-agent histories carry ``agent`` and are claimed before this)."""
    if not isinstance(obj, dict):
        return False
    msgs = [m for m in _messages(obj)[:50] if isinstance(m, dict)]
    if not msgs or not all("content" in m and ("role" in m or "name" in m) for m in msgs):
        return False
    if any("agent" in m for m in msgs):
        return False
    if any(isinstance(obj.get(k), bool) for k in OUTCOME_KEYS):
        return True
    return any(isinstance(m.get("name"), str) or str(m.get("role")) not in CHAT_ROLES for m in msgs)


def speaker(message: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(agent, note, addressee) of one message: ``Orchestrator (-> WebSurfer)`` → (Orchestrator, None, WebSurfer)."""
    name = message.get("name")
    role = str(message.get("role") or "")
    if isinstance(name, str) and name.strip():
        return name.strip(), None, None
    m = _ROLE_RX.match(role)
    if not m or not m.group("agent"):
        return role.strip() or "unknown", None, None
    note = m.group("note").strip()
    if note.startswith("->"):
        return m.group("agent"), None, note[2:].strip() or None
    return m.group("agent"), note or None, None


def crash_in(text: str) -> tuple[str, str] | None:
    """(exception type, message) of a Python traceback a message carries (the logs capture the run's stderr)."""
    at = text.find(TRACEBACK)
    if at < 0:
        return None
    for line in text[at + len(TRACEBACK):].splitlines():
        if not line.strip() or line[0].isspace():
            continue  # frames and source lines are indented
        m = _EXCEPTION_LINE.match(line.strip())
        if m:
            return m.group("type"), m.group("message")
    return None


def outcome_of(doc: dict[str, Any]) -> str | None:
    for key in OUTCOME_KEYS:
        v = doc.get(key)
        if isinstance(v, bool):
            return "passed" if v else "failed"
    return None


def _str(doc: dict[str, Any], *keys: str) -> str | None:
    for k in keys:
        v = doc.get(k)
        if v is not None and v != "":
            return to_text(v)
    return None


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield the spans of one multi-agent log (root first, then one span per message in order)."""
    doc, source = load_keyed_document(path, problems)
    if doc is NO_DOCUMENT:
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("history"), list):
        problems.skip("not_trace_data", f"{path}:1", "no message history")
        return
    where = f"{path}:1"
    key = f"{FORMAT}|{source}"
    trace_id = stable_hex(32, key)
    root_id = stable_hex(16, key, "root")
    stem = source_name(path).removesuffix(".json")
    nodeid = f"multi-agent::{path.parent.name}/{stem}" if path.parent.name else f"multi-agent::{stem}"
    common: dict[str, Any] = {
        conventions.SOURCE_FORMAT: FORMAT,
        SYNTHETIC_TIME: True,
        conventions.TEST_NODEID: nodeid,
        conventions.RUN_ID: source_name(path),
    }
    outcome = outcome_of(doc)
    if outcome:
        common[conventions.TEST_OUTCOME] = outcome
    msgs = doc["history"]
    children: list[Span] = []
    agents: list[str] = []
    last_text: str | None = None
    for pos, m in enumerate(msgs):
        if not isinstance(m, dict):
            problems.skip("message_not_an_object", f"{where}#history[{pos}]")
            continue
        agent, note, to = speaker(m)
        content = m.get("content")
        text = to_text(content) if content is not None else ""
        role = str(m.get("role") or "")
        human = agent.lower() in HUMAN_ROLES or (role.lower() in HUMAN_ROLES and not isinstance(m.get("name"), str))
        attrs: dict[str, Any] = {"multi_agent.role": role, "multi_agent.position": pos}
        if note:
            attrs["multi_agent.note"] = note
        if to:
            attrs["multi_agent.addressed_to"] = to
        if human:
            attrs.update({"openinference.span.kind": "CHAIN", "input.value": text})
        else:
            attrs.update({
                "openinference.span.kind": "LLM",
                "gen_ai.operation.name": "chat",
                "gen_ai.agent.name": agent,
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": text,
            })
            if isinstance(m.get("name"), str):
                attrs["llm.output_messages.0.message.name"] = m["name"]
            last_text = text
            if agent not in agents:
                agents.append(agent)
        crash = crash_in(text)
        if crash:  # the run crashed where this message was logged
            attrs["exception.type"], attrs["exception.message"] = crash
        attrs.update(common)
        t0 = SYNTHETIC_EPOCH_NS + (pos + 1) * STEP_NS
        children.append(make_span(
            trace_id=trace_id,
            span_id=stable_hex(16, key, "message", pos),
            parent_span_id=root_id,
            name=f"{agent} ({note})" if note else (f"{agent} -> {to}" if to else agent),
            start_ns=t0,
            end_ns=t0 + STEP_NS // 2,
            status_code=STATUS_ERROR if crash else STATUS_OK,
            status_message=f"{crash[0]}: {crash[1]}" if crash else "",
            attributes=attrs,
        ))
    root: dict[str, Any] = {
        "openinference.span.kind": "AGENT",
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.agent.name": "multi-agent",
        "multi_agent.agents": agents,
    }
    question = _str(doc, "question", "task")
    if question is not None:
        root["input.value"] = question
    if last_text is not None:
        root["output.value"] = last_text
    for attr, keys in (
        ("multi_agent.ground_truth", ("ground_truth", "groundtruth")),
        ("multi_agent.question_id", ("question_ID", "question_id")),
        ("multi_agent.level", ("level",)),
        ("multi_agent.annotation.mistake_agent", ("mistake_agent",)),
        ("multi_agent.annotation.mistake_step", ("mistake_step",)),
        ("multi_agent.annotation.mistake_reason", ("mistake_reason",)),
    ):
        v = _str(doc, *keys)
        if v is not None:
            root[attr] = v
    flatten_into(root, "multi_agent.system_prompt", doc.get("system_prompt"))
    root.update(common)
    # the run's outcome lives in halo.test.outcome; a wrong answer is not an exception
    yield make_span(
        trace_id=trace_id,
        span_id=root_id,
        name="multi-agent run",
        start_ns=SYNTHETIC_EPOCH_NS,
        end_ns=SYNTHETIC_EPOCH_NS + (len(msgs) + 1) * STEP_NS,
        status_code=STATUS_UNSET,
        attributes=root,
    )
    yield from children
