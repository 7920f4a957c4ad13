"""Langfuse observation exports → canonical spans.

Shape (Langfuse public API ``GET /api/public/observations``, ``Observation`` schema in its
OpenAPI spec / JS SDK types): ``{"data": [{id, traceId, parentObservationId, type
(GENERATION|SPAN|EVENT|AGENT|TOOL|CHAIN|RETRIEVER|EMBEDDING|GUARDRAIL|EVALUATOR), name,
startTime, endTime, completionStartTime, model, modelParameters, input, output, usage
{input, output, total, unit}, usageDetails {input, output, total...}, level
(DEBUG|DEFAULT|WARNING|ERROR), statusMessage, metadata, version, environment}], "meta":
{...}}``. Also accepted: a bare list, JSONL of observations, and a trace document with
``observations``. Langfuse ids are OTel hex (SDK v3) or UUIDs (older SDKs): UUID trace ids
lose their dashes, other ids are hashed stably with the original kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.traces import conventions
from engine.traces.formats.common import (
    convert_records,
    dict_at,
    flatten_into,
    iter_documents,
    message_attrs,
    stable_hex,
    str_at,
    to_text,
)
from engine.traces.problems import Problems
from engine.traces.span import STATUS_ERROR, STATUS_UNSET, Span, make_span, span_id_hex, to_ns, trace_id_hex

FORMAT = "langfuse"


def _id(raw: Any, n_chars: int, attrs: dict[str, Any], orig_key: str) -> str:
    out = trace_id_hex(raw) if n_chars == 32 else span_id_hex(raw)
    if out:
        return out
    attrs[orig_key] = str(raw)
    return stable_hex(n_chars, "langfuse.id", raw)


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return int(v)
    return None


def _messages(v: Any) -> list[dict[str, Any]] | None:
    """Chat messages in an observation's input/output, if that is what it holds."""
    if isinstance(v, dict) and isinstance(v.get("messages"), list):
        v = v["messages"]
    if isinstance(v, dict) and "role" in v:
        return [v]
    if isinstance(v, list) and v and all(isinstance(m, dict) and "role" in m for m in v):
        return v
    return None


def convert_observation(obs: Any, problems: Problems, where: str) -> Span | None:
    """One Langfuse observation → canonical span (or None, counted)."""
    if not isinstance(obs, dict):
        problems.skip("not_an_object", where)
        return None
    if not obs.get("traceId"):
        problems.skip("missing_trace_id", where)
        return None
    if not obs.get("id"):
        problems.skip("missing_span_id", where)
        return None
    start = to_ns(obs.get("startTime"))
    if start is None:
        problems.skip("bad_timestamp", where, f"startTime={obs.get('startTime')!r}"[:100])
        return None
    attrs: dict[str, Any] = {}
    tid = _id(obs["traceId"], 32, attrs, conventions.ORIGINAL_TRACE_ID)
    sid = _id(obs["id"], 16, attrs, conventions.ORIGINAL_SPAN_ID)
    parent = obs.get("parentObservationId")
    pid = _id(parent, 16, attrs, conventions.ORIGINAL_PARENT_ID) if parent else ""
    otype = str(obs.get("type") or "SPAN").upper()
    name = str_at(obs, "name") or otype.lower()
    attrs["langfuse.observation.type"] = otype
    attrs["langfuse.observation.name"] = name
    end = to_ns(obs.get("endTime"))
    if end is None:
        end = start
        if otype != "EVENT":  # events are points in time; others should have ended
            problems.repair("missing_end_time", where)
            attrs[conventions.REPAIRED] = "missing_end_time"
    elif end < start:
        problems.repair("end_before_start", where)
        attrs[conventions.REPAIRED] = "end_before_start"
        end = start
    model = obs.get("model")
    if isinstance(model, str) and model:
        attrs["llm.model_name"] = model
        attrs["langfuse.observation.model.name"] = model
    if obs.get("modelParameters"):
        attrs["llm.invocation_parameters"] = to_text(obs["modelParameters"])
    usage = dict_at(obs, "usageDetails") or dict_at(obs, "usage")
    tin = _int(usage.get("input", usage.get("promptTokens")))
    tout = _int(usage.get("output", usage.get("completionTokens")))
    total = _int(usage.get("total", usage.get("totalTokens")))
    if tin is not None:
        attrs["gen_ai.usage.input_tokens"] = tin
    if tout is not None:
        attrs["gen_ai.usage.output_tokens"] = tout
    if total is not None:
        attrs["llm.token_count.total"] = total
    inp, out = obs.get("input"), obs.get("output")
    if inp is not None:
        attrs["input.value"] = to_text(inp)
        msgs = _messages(inp) if otype == "GENERATION" else None
        if msgs:
            message_attrs(attrs, "llm.input_messages", msgs)
    if out is not None:
        attrs["output.value"] = to_text(out)
        msgs = _messages(out) if otype == "GENERATION" else None
        if msgs:
            message_attrs(attrs, "llm.output_messages", msgs)
    if otype == "TOOL":
        attrs["tool.name"] = name
    level = obs.get("level")
    if isinstance(level, str):
        attrs["langfuse.observation.level"] = level
    msg = obs.get("statusMessage")
    if isinstance(msg, str) and msg:
        attrs["langfuse.observation.status_message"] = msg
    flatten_into(attrs, "langfuse.observation.metadata", obs.get("metadata"))
    for k in ("version", "environment", "promptId", "promptName"):
        if obs.get(k) is not None:
            attrs[f"langfuse.observation.{k}"] = str(obs[k])
    attrs[conventions.SOURCE_FORMAT] = FORMAT
    is_err = isinstance(level, str) and level.upper() == "ERROR"
    return make_span(
        trace_id=tid,
        span_id=sid,
        parent_span_id=pid,
        name=name,
        start_ns=start,
        end_ns=end,
        status_code=STATUS_ERROR if is_err else STATUS_UNSET,
        status_message=msg if is_err and isinstance(msg, str) else "",
        attributes=attrs,
        scope_name="langfuse",
    )


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield the spans of a Langfuse observations export (``data`` page, or a trace's ``observations``)."""
    for where, value in iter_documents(path, problems):
        yield from convert_records(value, ("data", "observations"), where, convert_observation, problems)
