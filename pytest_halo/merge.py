"""Merge the per-process part files into one self-contained ``traces.jsonl``.

Each process (serial run, or each xdist worker) appends to its own
``parts/<run>-<worker>.jsonl``; the controller merges after every node is down. A span
appears once per (trace_id, span_id) — duplicates are dropped, a torn last line of a
crashed worker is skipped — and each span is stamped with its test's final outcome.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from engine.traces import conventions as C


@dataclass
class MergeStats:
    """What the merge saw; ``traces_by_test`` keeps first-seen order of trace ids."""

    spans: int = 0
    duplicates: int = 0
    bad_lines: int = 0
    traces: int = 0
    parts: int = 0
    traces_by_test: dict[str, dict[str, None]] = field(default_factory=dict)  # ordered set
    spans_by_test: dict[str, int] = field(default_factory=dict)


def part_path(parts_dir: Path, run_id: str, worker: str) -> Path:
    return parts_dir / f"{run_id}-{worker}.jsonl"


def find_parts(parts_dir: Path, run_id: str) -> list[Path]:
    return sorted(parts_dir.glob(f"{run_id}-*.jsonl"))


def merge_parts(parts: list[Path], out_path: Path, outcomes: dict[str, str]) -> MergeStats:
    """Stream every part into ``out_path`` (written atomically), de-duplicated and outcome-stamped."""
    stats = MergeStats(parts=len(parts))
    seen: set[tuple[str, str]] = set()
    trace_ids: set[str] = set()
    tmp = out_path.with_name(out_path.name + ".tmp")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    dumps = orjson.dumps
    nl = orjson.OPT_APPEND_NEWLINE
    with open(tmp, "wb", buffering=1 << 20) as out:
        for part in parts:
            with open(part, "rb") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    try:
                        span = orjson.loads(line)
                        key = (span["trace_id"], span["span_id"])
                        attrs = span["attributes"]
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        stats.bad_lines += 1
                        continue
                    if key in seen:
                        stats.duplicates += 1
                        continue
                    seen.add(key)
                    trace_ids.add(key[0])
                    nodeid = attrs.get(C.TEST_NODEID)
                    if nodeid:
                        outcome = outcomes.get(nodeid)
                        if outcome:
                            attrs[C.TEST_OUTCOME] = outcome
                        stats.traces_by_test.setdefault(nodeid, {})[key[0]] = None
                        stats.spans_by_test[nodeid] = stats.spans_by_test.get(nodeid, 0) + 1
                    out.write(dumps(span, option=nl))
                    stats.spans += 1
    os.replace(tmp, out_path)
    stats.traces = len(trace_ids)
    return stats
