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
