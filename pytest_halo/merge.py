"""Merge the per-process part files into one self-contained ``traces.jsonl``.

Each process (serial run, or each xdist worker) writes its own ``parts/<run>-<worker>.jsonl``
with spans already stamped with their test's outcome, and on a clean exit an
``.index.json`` beside it (span count, trace ids, per-test trace ids and span counts). The
controller merges after every node is down:

* parts with an index are final: concatenated as bytes (a serial run's single part is just
  renamed) — no JSON round trip per span;
* a part without an index (its worker crashed, or its disk filled up) is scanned line by
  line: a torn last line is skipped, duplicates dropped, outcomes stamped from the
  controller's reports.

``traces.jsonl`` is always replaced whole (a rename), so a concurrent run or a reader never
sees half of it. When there is no room to write the merged copy of a lone index-less part,
the part itself is cut at its last whole line and renamed (what was captured is kept).
"""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from engine.safe_io import atomic_writer
from engine.traces import conventions
from pytest_halo.capture.recorder import index_path


@dataclass
class MergeStats:
    """What the merge saw; ``traces_by_test`` keeps first-seen order of trace ids."""

    spans: int = 0
    duplicates: int = 0
    bad_lines: int = 0
    traces: int = 0
    parts: int = 0
    scanned_parts: int = 0  # parts without an index (crashed writer), read line by line
    traces_by_test: dict[str, dict[str, None]] = field(default_factory=dict)  # ordered set
    spans_by_test: dict[str, int] = field(default_factory=dict)


def part_path(parts_dir: Path, run_id: str, worker: str) -> Path:
    return parts_dir / f"{run_id}-{worker}.jsonl"


def find_parts(parts_dir: Path, run_id: str) -> list[Path]:
    """This run's part files (never another run's, live or dead)."""
    try:
        return sorted(parts_dir.glob(f"{glob.escape(run_id)}-*.jsonl"))
    except OSError:
        return []


def _load_index(part: Path) -> dict | None:
    try:
        data = orjson.loads(index_path(part).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("tests"), dict) else None


class _Scan:
    """Line-by-line merge of an index-less part: validate, de-duplicate, stamp, count."""

    def __init__(self, stats: MergeStats, outcomes: dict[str, str], traces: set[str]) -> None:
        self.stats = stats
        self.outcomes = outcomes
        self.traces = traces
        self.seen: set[tuple[str, str]] = set()

    def line(self, raw: bytes) -> bytes | None:
        if not raw.strip():
            return None
        try:
            span = orjson.loads(raw)
            key = (span["trace_id"], span["span_id"])
            attrs = span["attributes"]
            hash(key)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.stats.bad_lines += 1
            return None
        if key in self.seen:
            self.stats.duplicates += 1
            return None
        self.seen.add(key)
        self.traces.add(key[0])
        nodeid = attrs.get(conventions.TEST_NODEID)
        if nodeid:
            outcome = self.outcomes.get(nodeid)
            if outcome and conventions.TEST_OUTCOME not in attrs:
                attrs[conventions.TEST_OUTCOME] = outcome
            self.stats.traces_by_test.setdefault(nodeid, {})[key[0]] = None
            self.stats.spans_by_test[nodeid] = self.stats.spans_by_test.get(nodeid, 0) + 1
        return orjson.dumps(span, option=orjson.OPT_APPEND_NEWLINE)


def _add_index(stats: MergeStats, index: dict, traces: set[str]) -> None:
    stats.spans += int(index.get("spans") or 0)
    traces.update(index.get("traces") or [])
    for nodeid, entry in index["tests"].items():
        tl = stats.traces_by_test.setdefault(nodeid, {})
        for tid in entry.get("trace_ids") or []:
            tl[tid] = None
        stats.spans_by_test[nodeid] = stats.spans_by_test.get(nodeid, 0) + int(entry.get("spans") or 0)


def merge_parts(parts: list[Path], out_path: Path, outcomes: dict[str, str]) -> MergeStats:
    """Merge every part into ``out_path`` (atomically) and return what was merged."""
    stats = MergeStats(parts=len(parts))
    traces: set[str] = set()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    indexed = [(p, _load_index(p)) for p in parts]
    if len(indexed) == 1 and indexed[0][1] is None:
        return _merge_lone_scanned(parts[0], out_path, outcomes)
    only_index = indexed[0][1] if len(indexed) == 1 else None
    if only_index is not None:  # serial run: the part is final
        part = indexed[0][0]
        _add_index(stats, only_index, traces)
        os.replace(part, out_path)
        index_path(part).unlink(missing_ok=True)
        stats.traces = len(traces)
        return stats
    scan = _Scan(stats, outcomes, traces)
    with atomic_writer(out_path) as out:
        for part, index in indexed:
            with open(part, "rb") as fh:
                if index is not None:
                    _add_index(stats, index, traces)
                    shutil.copyfileobj(fh, out, 1 << 20)
                    continue
                stats.scanned_parts += 1
                for raw in fh:
                    merged = scan.line(raw)
                    if merged is not None:
                        out.write(merged)
                        stats.spans += 1
    for part, _ in indexed:
        index_path(part).unlink(missing_ok=True)
    stats.traces = len(traces)
    return stats


def _merge_lone_scanned(part: Path, out_path: Path, outcomes: dict[str, str]) -> MergeStats:
    """One index-less part: a scanned copy, or — when that cannot be written — the part cut to whole lines."""
    try:
        return _merge_scanned([part], out_path, outcomes)
    except OSError:
        pass
    _cut_torn_tail(part)
    stats = MergeStats(parts=1, scanned_parts=1)
    traces: set[str] = set()
    scan = _Scan(stats, outcomes, traces)
    with open(part, "rb") as fh:
        for raw in fh:
            if scan.line(raw) is not None:
                stats.spans += 1
    os.replace(part, out_path)
    stats.traces = len(traces)
    return stats


def _merge_scanned(parts: list[Path], out_path: Path, outcomes: dict[str, str]) -> MergeStats:
    stats = MergeStats(parts=len(parts), scanned_parts=len(parts))
    traces: set[str] = set()
    scan = _Scan(stats, outcomes, traces)
    with atomic_writer(out_path) as out:
        for part in parts:
            with open(part, "rb") as fh:
                for raw in fh:
                    merged = scan.line(raw)
                    if merged is not None:
                        out.write(merged)
                        stats.spans += 1
    stats.traces = len(traces)
    return stats


def _cut_torn_tail(part: Path) -> None:
    """Truncate ``part`` after its last newline (a write cut short by a full disk leaves half a line)."""
    size = part.stat().st_size
    with open(part, "rb+") as fh:
        pos = size
        while pos > 0:
            step = min(pos, 1 << 16)
            fh.seek(pos - step)
            block = fh.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                fh.truncate(pos - step + nl + 1)
                return
            pos -= step
        fh.truncate(0)
