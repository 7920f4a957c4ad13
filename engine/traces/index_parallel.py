"""A cold index built by several processes: each scans a byte range; the parts merge into the one-pass index.

Why the merge is exact: a part's scan depends on earlier bytes only through the trace numbers
and facet bits it hands out, and both are numbered by first appearance. So a later part's
traces and vocabulary are renumbered into the earlier parts' (new ones appended in the order
the part met them, as one pass would), a trace cut by a part boundary has its sums added, its
time bounds widened, its facet masks or-ed and its test outcome folded by the same rule as
``canonical_reader.fold_test``; structure checks (duplicates, orphans, cycles) and per-trace
times then run once over the merged index, exactly as after a one-pass scan. Examples of bad
lines carry a part-local line number under a placeholder label and are rewritten with the
lines of the parts before. Each part also writes its groups of the content index straight
into the shared file at their final offsets (``content_index`` parts concatenate exactly).
"""

from __future__ import annotations

import gc
from array import array
from itertools import accumulate
from typing import Any

from engine.traces import canonical_reader, content_index
from engine.traces.index import TraceIndex
from engine.traces.parallel import PART_LABEL, add_part_problems, line_ranges, run_parts
from engine.traces.problems import Problems

_MASKS = (canonical_reader.M_MODEL, canonical_reader.M_AGENT, canonical_reader.M_SERVICE, canonical_reader.M_TOOL)
_SUMS = (canonical_reader.N, canonical_reader.ERR, canonical_reader.TIN, canonical_reader.TOUT, canonical_reader.BYTES, *range(canonical_reader.CAT0, canonical_reader.ORPHANS))


def build_parallel(path: str, jobs: int, label: str | None = None, content_file: str | None = None) -> TraceIndex:
    """The cold index of ``path`` from ``jobs`` processes; equal to ``TraceIndex.build(path)``.

    ``content_file``: also write the content index there (created or truncated to its size).
    """
    import os

    size = os.path.getsize(path)
    ranges = line_ranges(path, jobs, size)
    cuts = [0] + [a - a % content_index.GROUP_BYTES for a, _ in ranges[1:]] + [size]
    if content_file is not None:
        with open(content_file, "wb") as fh:
            fh.truncate(content_index.index_bytes(size))
    calls = [
        (path, a, b, content_file, cuts[k], max(cuts[k], cuts[k + 1])) for k, (a, b) in enumerate(ranges)
    ]
    parts = run_parts(_scan_part, calls)
    return _merge(path, parts, label or path)


def _scan_part(
    path: str, start: int, stop: int, content_file: str | None, cstart: int, cstop: int
) -> tuple[canonical_reader.ScanState, Problems, int, int]:
    """One part: scan lines ``[start, stop)``, write content groups ``[cstart, cstop)``; (state, problems, end, lines)."""
    state = canonical_reader.ScanState()
    problems = Problems()
    enabled = gc.isenabled()
    gc.disable()
    try:
        end, lines = canonical_reader.scan(path, state, problems, start, 0, PART_LABEL, stop=stop)
    finally:
        if enabled:
            gc.enable()
    for t in range(len(state.tids)):  # final unless the trace continues in another part (then redone)
        canonical_reader.finish_row(state.cols, t)
    if content_file is not None and cstop > cstart:
        with open(content_file, "r+b") as fh:
            fh.seek(cstart // content_index.GROUP_BYTES * content_index.GROUP_SIZE)
            content_index.build(path, cstart, cstop, fh)
    state.tmap = {}  # rebuilt from tids by whoever needs it: no need to ship it back
    state.vbit = {}
    return state, problems, end, lines


def _merge(path: str, parts: list[tuple[canonical_reader.ScanState, Problems, int, int]], label: str) -> TraceIndex:
    idx = TraceIndex(path)
    st, problems, end, lines = parts[0]
    st.tmap = {tid: t for t, tid in enumerate(st.tids)}
    st.vbit = {v: 1 << i for i, v in enumerate(st.vocab)}
    merged = Problems()
    add_part_problems(merged, problems, label, 0)
    crossing: set[int] = set()  # traces with spans in more than one part
    for part_state, part_problems, part_end, part_lines in parts[1:]:
        crossing.update(_merge_state(st, part_state))
        add_part_problems(merged, part_problems, label, lines)
        end, lines = max(end, part_end), lines + part_lines
    idx.state = st
    idx.problems = merged
    idx.end, idx.lineno = end, lines
    idx.complete = idx.ends_with_newline()
    enabled = gc.isenabled()
    gc.disable()
    try:
        touched = set(st.tr)  # the set a one-pass ``extend`` checks, iterated in the same order
        idx.check_structure(touched, label)
        # rows the check rebuilt (dropped duplicates) and rows summed across parts need their times again
        for t in touched if idx.renumbered else crossing:
            canonical_reader.finish_row(st.cols, t)
    finally:
        if enabled:
            gc.enable()
    return idx


def _merge_state(a: canonical_reader.ScanState, b: canonical_reader.ScanState) -> list[int]:
    """Append part ``b``'s spans and traces to ``a`` as if one scan had read both; returns the
    traces of ``a`` that ``b`` continued."""
    n_a = len(a.off)
    bits = [a.bit(v) for v in b.vocab]  # b's bit i -> a's bit; new values appended in b's order
    remapped: dict[int, int] = {0: 0}

    def remap(mask: int) -> int:
        got = remapped.get(mask)
        if got is None:
            got, m, i = 0, mask, 0
            while m:
                if m & 1:
                    got |= bits[i]
                m >>= 1
                i += 1
            remapped[mask] = got
        return got

    to_a: list[int] = []
    new_b: list[int] = []
    old_b: list[tuple[int, int]] = []
    base = len(a.tids)
    for t, tid in enumerate(b.tids):
        ta = a.tmap.get(tid)
        if ta is None:
            ta = base + len(new_b)
            a.tmap[tid] = ta
            new_b.append(t)
        else:
            old_b.append((t, ta))
        to_a.append(ta)
    a.tids.extend(b.tids[t] for t in new_b)

    shifted = _shifted_spans(b.tspans, n_a)
    a.tspans.extend(shifted[t] for t in new_b)
    for c in range(canonical_reader.ROW_LEN):
        col = b.cols[c]
        vals = [col[t] for t in new_b]
        if c in _MASKS:
            vals = [remap(v) for v in vals]
        a.cols[c].extend(vals)
    for t, ta in old_b:
        _fold_trace(a, ta, b, t, remap)
        a.tspans[ta].extend(shifted[t])
    a.off.extend(b.off)
    a.ln.extend(b.ln)
    a.sid.extend(b.sid)
    a.pid.extend(b.pid)
    a.tr.extend(array("i", map(to_a.__getitem__, b.tr)))
    a.slow.update(i + n_a for i in b.slow)
    a.gaps.extend(b.gaps)
    return [ta for _, ta in old_b]


def _shifted_spans(tspans: list[array], by: int) -> list[array]:
    """Every trace's span numbers plus ``by``, with C-level work (one concatenation, one add, slices)."""
    import numpy as np

    lens = array("q", map(len, tspans))
    flat = array("i")
    for sp in tspans:
        flat.extend(sp)
    moved = array("i", (np.frombuffer(flat, np.int32) + np.int32(by)).tobytes()) if flat else flat
    starts = array("q", accumulate(lens, initial=0))
    return list(map(moved.__getitem__, map(slice, starts[:-1], starts[1:])))


def _fold_trace(a: canonical_reader.ScanState, ta: int, b: canonical_reader.ScanState, tb: int, remap: Any) -> None:
    """Trace ``tb`` of part ``b`` continues trace ``ta`` of ``a``: add, widen, or and fold its rollup."""
    ca, cb = a.cols, b.cols
    for c in _SUMS:
        ca[c][ta] += cb[c][tb]
    if cb[canonical_reader.START][tb] < ca[canonical_reader.START][ta]:
        ca[canonical_reader.START][ta] = cb[canonical_reader.START][tb]
    if cb[canonical_reader.END][tb] > ca[canonical_reader.END][ta]:
        ca[canonical_reader.END][ta] = cb[canonical_reader.END][tb]
    for c in _MASKS:
        ca[c][ta] |= remap(cb[c][tb])
    row: list[Any] = [None] * canonical_reader.ROW_LEN
    row[canonical_reader.NODEID], row[canonical_reader.OUTCOME] = ca[canonical_reader.NODEID][ta], ca[canonical_reader.OUTCOME][ta]
    canonical_reader.fold_test(row, cb[canonical_reader.NODEID][tb], cb[canonical_reader.OUTCOME][tb])  # first node id wins; the later of the most severe outcomes
    ca[canonical_reader.NODEID][ta], ca[canonical_reader.OUTCOME][ta] = row[canonical_reader.NODEID], row[canonical_reader.OUTCOME]
