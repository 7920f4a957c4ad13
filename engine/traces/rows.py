"""Plain rows of a trace store for code that computes over traces (the ``run_code`` sandbox's data file).

One rollup row per trace comes from the index alone (no file reads); span rows are the
normalized view of the selected traces, long texts capped so one span cannot dominate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from engine.traces.normalize import normalize
from engine.traces.store import TraceStore

TEXT_CAP = 2000
RAW_CAP = 64 << 10  # raw attribute text kept for a viewer (it redacts and cuts further)


def rollup_rows(store: TraceStore) -> Iterator[dict[str, Any]]:
    """One dict per trace: trace_id, span_count, duration_ms, has_errors, tool_names, test_outcome, ..."""
    return store.summary_rows()


def span_rows(store: TraceStore, trace_ids: Iterable[str], text_cap: int = TEXT_CAP) -> Iterator[dict[str, Any]]:
    """The normalized spans of ``trace_ids`` (unknown ids are skipped), texts capped at ``text_cap``."""
    for trace_id in trace_ids:
        try:
            spans = store.spans(trace_id)
        except KeyError:
            continue
        for span in spans:
            row = dataclasses.asdict(normalize(span))
            row["duration_ms"] = round((row.pop("end_ns") - row.pop("start_ns")) / 1e6, 3)
            for key, value in row.items():
                if isinstance(value, str) and len(value) > text_cap:
                    row[key] = value[:text_cap] + "…"
            yield row


def view_rows(store: TraceStore, trace_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Per trace, its spans for a viewer: the normalized facts plus the raw attributes (strings capped at 64 KB)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for trace_id in trace_ids:
        try:
            spans = store.spans(trace_id)
        except KeyError:
            continue
        rows = []
        for span in spans:
            n = normalize(span)
            attrs = {k: (v if isinstance(v, str) else str(v))[:RAW_CAP] for k, v in (span.get("attributes") or {}).items()}
            rows.append({
                "span_id": n.span_id, "parent_span_id": n.parent_span_id, "name": n.name, "category": n.category,
                "start_ms": n.start_ns / 1e6, "duration_ms": max(n.end_ns - n.start_ns, 0) / 1e6,
                "is_error": n.is_error, "error_message": n.error_message, "tool_name": n.tool_name,
                "tool_arguments": n.tool_arguments, "tool_result": n.tool_result, "model": n.model,
                "agent_name": n.agent_name, "output_text": n.output_text, "attributes": attrs,
            })
        out[trace_id] = rows
    return out
