"""Chat transcripts (OpenAI-style messages with ``tool_calls``) → one trace of agent / llm / tool spans.

Shared by the tau-bench, SWE-agent and generic ``openai_messages`` converters: a
transcript has no clock and no ids, so both are synthesized deterministically from
(source key, run index, message position) — re-converting gives byte-identical output —
and every span is marked ``halo.synthetic_time=true``.

Layout: a root agent span carrying the run's test linkage (nodeid, outcome, reward /
exit status); one llm span per assistant message (input = the messages since the
previous assistant turn, to keep output linear in transcript size; output = the
message with its tool calls); one tool span per tool call, closed by the matching
tool message. Tool results starting with ``Error:`` make the tool span an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.traces import conventions
from engine.traces.formats.common import (
    SYNTHETIC_EPOCH_NS,
    SYNTHETIC_TIME,
    list_at,
    message_attrs,
    stable_hex,
    str_at,
    to_text,
)
from engine.traces.problems import Problems
from engine.traces.span import STATUS_ERROR, STATUS_OK, STATUS_UNSET, Span, make_span

STEP_NS = 1_000_000_000  # one synthetic second per message position
RUN_STRIDE_NS = 86_400 * STEP_NS  # one synthetic day per run: runs never overlap
ERROR_PREFIXES = ("Error:", "error:", "ERROR:")


@dataclass
class Run:
    """One transcript to convert, plus the run-level facts the root span carries."""

    key: str  # stable identity for ids: "<format>|<file name>|<run index>"
    index: int  # position of the run in its file (spaces synthetic clocks apart)
    messages: list[Any]
    source_format: str
    nodeid: str | None = None
    outcome: str | None = None  # passed | failed | None (unknown)
    agent_name: str = "agent"
    model: str | None = None
    root_attributes: dict[str, Any] = field(default_factory=dict)
    tools_offered: list[Any] | None = None  # OpenAI tool schemas when the source lists them
    batch: str | None = None  # halo.run.id: the import batch (the source file) the run came from


def is_tool_error(content: Any) -> bool:
    return isinstance(content, str) and content.lstrip().startswith(ERROR_PREFIXES)


def _call_fields(tc: Any) -> tuple[str, str | None, str | None]:
    """(name, arguments text, call id) of one OpenAI ``tool_calls`` entry, tolerating odd shapes."""
    if not isinstance(tc, dict):
        return "unknown", None, None
    fn = tc.get("function")
    if not isinstance(fn, dict):  # flat shape: name/arguments on the call itself
        fn = tc
    name = fn.get("name")
    args = fn.get("arguments")
    cid = tc.get("id")
    return (
        str(name) if name else "unknown",
        to_text(args) if args is not None else None,
        cid if isinstance(cid, str) else None,
    )


def _tool_message_ids(m: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    if isinstance(m.get("tool_call_id"), str):
        ids.append(m["tool_call_id"])
    for x in m.get("tool_call_ids") or []:  # SWE-agent history spells it as a list
        if isinstance(x, str):
            ids.append(x)
    return ids


def _match_result(
    msgs: list[dict[str, Any]], pos: int, cid: str | None, used: set[int]
) -> tuple[int, dict[str, Any]] | None:
    """The tool message answering a call made at ``pos``: same id within the turn, else the next unused one.

    Only the messages up to the next assistant turn are searched: real transcripts
    (tau-bench) reuse call ids across turns, so a global id lookup pairs wrong results.
    """
    window = []
    for q in range(pos + 1, len(msgs)):
        if msgs[q].get("role") == "assistant":
            break
        if msgs[q].get("role") == "tool" and q not in used:
            window.append(q)
    if cid:
        for q in window:
            if cid in _tool_message_ids(msgs[q]):
                return q, msgs[q]
    for q in window:
        if not cid or not _tool_message_ids(msgs[q]):
            return q, msgs[q]
    return None


def spans_for_run(run: Run, problems: Problems, where: str) -> Iterator[Span]:
    """Yield the canonical spans of one transcript (root first, then in message order)."""
    trace_id = stable_hex(32, run.key)
    root_id = stable_hex(16, run.key, "root")
    base = SYNTHETIC_EPOCH_NS + run.index * RUN_STRIDE_NS
    msgs = [m for m in run.messages if isinstance(m, dict)]
    if len(msgs) != len(run.messages):
        problems.skip("message_not_an_object", where, f"{len(run.messages) - len(msgs)} messages")

    common: dict[str, Any] = {conventions.SOURCE_FORMAT: run.source_format, SYNTHETIC_TIME: True}
    if run.nodeid:
        common[conventions.TEST_NODEID] = run.nodeid
    if run.outcome:
        common[conventions.TEST_OUTCOME] = run.outcome
    if run.batch:
        common[conventions.RUN_ID] = run.batch

    children: list[Span] = []
    used_results: set[int] = set()
    last_assistant = -1
    for pos, m in enumerate(msgs):
        if m.get("role") != "assistant":
            continue
        t0 = base + (pos + 1) * STEP_NS
        llm_id = stable_hex(16, run.key, "llm", pos)
        attrs: dict[str, Any] = {
            "openinference.span.kind": "LLM",
            "gen_ai.operation.name": "chat",
            "halo.transcript.position": pos,
        }
        if run.model:
            attrs["llm.model_name"] = run.model
        message_attrs(attrs, "llm.input_messages", msgs[last_assistant + 1 : pos])
        message_attrs(attrs, "llm.output_messages", [m])
        if run.tools_offered:
            for i, schema in enumerate(run.tools_offered):
                attrs[f"llm.tools.{i}.tool.json_schema"] = to_text(schema)
        if isinstance(m.get("content"), str):
            attrs["output.value"] = m["content"]
        attrs.update(common)
        last_assistant = pos
        children.append(
            make_span(
                trace_id=trace_id,
                span_id=llm_id,
                parent_span_id=root_id,
                name=f"llm {run.model}" if run.model else "llm",
                start_ns=t0,
                end_ns=t0 + STEP_NS // 2,
                status_code=STATUS_OK,
                attributes=attrs,
            )
        )
        calls = list_at(m, "tool_calls")
        for j, tc in enumerate(calls):
            name, args, cid = _call_fields(tc)
            hit = _match_result(msgs, pos, cid, used_results)
            tattrs: dict[str, Any] = {
                "openinference.span.kind": "TOOL",
                "gen_ai.operation.name": "execute_tool",
                "tool.name": name,
            }
            if args is not None:
                tattrs["input.value"] = args
                tattrs["tool.parameters"] = args
            if cid:
                tattrs["gen_ai.tool.call.id"] = cid
            status, message = STATUS_UNSET, ""
            if hit is not None:
                rpos, rmsg = hit
                used_results.add(rpos)
                content = rmsg.get("content")
                result = to_text(content) if content is not None else ""
                tattrs["output.value"] = result
                t1 = base + (rpos + 1) * STEP_NS
                if is_tool_error(result):
                    status, message = STATUS_ERROR, result.strip().splitlines()[0][:1000]
                else:
                    status = STATUS_OK
            else:
                tattrs["halo.tool.result_missing"] = True
                t1 = t0 + STEP_NS // 2 + (j + 1) * (STEP_NS // 1000)
            tattrs.update(common)
            children.append(
                make_span(
                    trace_id=trace_id,
                    span_id=stable_hex(16, run.key, "tool", pos, j),
                    parent_span_id=root_id,
                    name=f"execute_tool {name}",
                    start_ns=t0 + STEP_NS // 2 + j * (STEP_NS // 1000),
                    end_ns=t1,
                    status_code=status,
                    status_message=message,
                    attributes=tattrs,
                )
            )

    # Tool messages nobody asked for still happened: keep them as tool spans.
    for pos, m in enumerate(msgs):
        if m.get("role") != "tool" or pos in used_results:
            continue
        problems.repair("orphan_tool_result", where, f"message {pos}")
        content = to_text(m.get("content")) if m.get("content") is not None else ""
        name = str_at(m, "name", "unknown")
        tattrs = {
            "openinference.span.kind": "TOOL",
            "gen_ai.operation.name": "execute_tool",
            "tool.name": name,
            "output.value": content,
            "halo.tool.orphan_result": True,
            **common,
        }
        err = is_tool_error(content)
        t = base + (pos + 1) * STEP_NS
        children.append(
            make_span(
                trace_id=trace_id,
                span_id=stable_hex(16, run.key, "orphan", pos),
                parent_span_id=root_id,
                name=f"execute_tool {name}",
                start_ns=t,
                end_ns=t + STEP_NS // 2,
                status_code=STATUS_ERROR if err else STATUS_OK,
                status_message=content.strip().splitlines()[0][:1000] if err and content.strip() else "",
                attributes=tattrs,
            )
        )

    root_attrs: dict[str, Any] = {
        "openinference.span.kind": "AGENT",
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": run.agent_name,
    }
    first_user = next((m.get("content") for m in msgs if m.get("role") == "user"), None)
    if first_user is not None:
        root_attrs["input.value"] = to_text(first_user)
    last_text = next(
        (m["content"] for m in reversed(msgs) if m.get("role") == "assistant" and isinstance(m.get("content"), str)),
        None,
    )
    if last_text is not None:
        root_attrs["output.value"] = last_text
    root_attrs.update(run.root_attributes)
    root_attrs.update(common)
    # The outcome lives in halo.test.outcome; a failed run is not an exception, so the status stays unset.
    yield make_span(
        trace_id=trace_id,
        span_id=root_id,
        name=f"agent {run.agent_name}",
        start_ns=base,
        end_ns=base + (len(msgs) + 1) * STEP_NS,
        attributes=root_attrs,
    )
    children.sort(key=lambda s: (s["start_time"], s["span_id"]))
    yield from children
