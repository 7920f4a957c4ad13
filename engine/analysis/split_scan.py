"""One large canonical JSONL file scanned by several processes, merged into the one-process scanner state.

Why it is exact: the scanner's per-trace state depends only on that trace's spans (in file
order), so when every trace lies inside one part, each part's trace states are what one pass
would build. Cuts are moved forward to the next line of another trace; after the parts ran,
a trace seen by two parts (interleaved or repeated traces) makes the split give up and the
caller scans the file in one process. What crosses traces merges exactly too: traces are
numbered by first appearance (parts in file order), outlier groups concatenate their values,
their labels come from the first part that made them, and the most extreme spans kept for
evidence are the top of the union (a span one pass would not have offered was below that top).
Problem examples are relocated from part-local lines to file lines.
"""

from __future__ import annotations

import gc
import heapq
from array import array
from pathlib import Path
from typing import BinaryIO

import orjson

from engine.analysis.cold import ColdState
from engine.analysis.config import AnalysisConfig
from engine.analysis.detectors.base import Hit
from engine.analysis.detectors.outliers import MAX_GROUPS, TOP_KEEP, OutlierStats
from engine.analysis.fast_scan import scan_jsonl
from engine.analysis.scan import Scanner
from engine.traces.dedupe import SeenSpans
from engine.traces.parallel import PART_LABEL, add_part_problems, line_ranges, run_parts
from engine.traces.problems import Problems

BOUNDARY_LINES = 50_000  # how far past a cut to look for the next trace


def split_scan(scanner: Scanner, path: Path, problems: Problems, jobs: int) -> bool:
    """Feed ``path`` to ``scanner`` from ``jobs`` processes; False (nothing fed) when the split is not exact."""
    ranges = [(a, b) for a, b in trace_ranges(str(path), jobs) if b > a]
    if len(ranges) < 2 or scanner.states or scanner.spans:
        return False
    finish = not scanner.user  # user detectors run in this process, on every run in order
    parts = run_parts(_scan_part, [(str(path), a, b, scanner.cfg, finish, k == 0) for k, (a, b) in enumerate(ranges)])
    tids: set[str] = set()
    keys: set[tuple[int, str]] = set()
    for sc, _, _, _ in parts:
        if not tids.isdisjoint(sc.index):
            return False  # a trace crosses a cut: its state would depend on both parts
        tids.update(sc.index)
        keys.update((0, k) for k in sc.outliers.latency)
        keys.update((1, k) for k in sc.outliers.tokens)
    if len(keys) >= MAX_GROUPS:
        return False  # which groups overflow depends on the order they were met in
    lines_before = 0
    for sc, part_problems, lines, runs in parts:
        base = len(scanner.states)
        for tid, i in sc.index.items():
            scanner.index[tid] = i + base
        if runs is None:
            scanner.states.extend(sc.states)
        else:
            _add_runs(scanner, runs, base)
        scanner.spans += sc.spans
        _merge_outliers(scanner.outliers, sc.outliers, base)
        add_part_problems(problems, part_problems, str(path), lines_before)
        lines_before += lines
    return True


def _scan_part(
    path: str, start: int, stop: int, cfg: AnalysisConfig, finish: bool, here: bool
) -> tuple[Scanner, Problems, int, _Runs | None]:
    """One part's scanner, its traces finished by the per-run detectors when ``finish`` (exact: the
    split is used only if no trace continues in another part), else frozen (``engine.analysis.cold``):
    pickling a million spans' worth of small objects costs more than the split saves. Finished runs
    travel as columns (``_Runs``): pickling an object per run cost ~0.25 s at 1M spans.

    ``here``: the part run by the analysis's own process, which then imports numpy for the outlier
    statistics (``outliers.NUMPY_FROM``) while the other parts finish, rather than after them.
    """
    sc = Scanner(cfg)
    problems = Problems()
    lines: list[int] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        scan_jsonl(sc, Path(path), problems, None, SeenSpans(), part=(start, stop, PART_LABEL), lines=lines)
        runs = None
        if finish:
            sc.finish_all()
            runs = _columns(sc)
        else:
            sc.freeze_all()
    finally:
        if enabled:
            gc.enable()
    if here:
        import numpy  # noqa: F401
    return sc, problems, lines[0] if lines else 0, runs


# a finished part's runs as columns: trace ids, nodeids, outcomes, first calls, hits of the runs that have some
_Runs = tuple[list[str], list["str | None"], list["str | None"], list[object], dict[int, list[Hit]]]


def _columns(sc: Scanner) -> _Runs:
    """``sc``'s finished runs as ``_Runs`` (its states and results are handed over and cleared)."""
    states, done = sc.states, sc.done
    calls: list[object] = []
    hits: dict[int, list[Hit]] = {}
    for i in range(len(states)):
        _, found, first = done[i]
        calls.append(first)
        if found:
            hits[i] = found
    runs = ([st.trace_id for st in states], [st.nodeid for st in states], [st.outcome for st in states], calls, hits)
    sc.states, sc.done = [], {}
    return runs


def _add_runs(scanner: Scanner, runs: _Runs, base: int) -> None:
    """Append a part's finished runs to ``scanner`` as traces ``base``, ``base + 1``...: what
    ``Scanner.finish`` would return for each, and their test linkage (``ColdState``)."""
    tids, nodeids, outcomes, calls, hits = runs
    scanner.states.extend(map(ColdState, tids, nodeids, outcomes))
    done = scanner.done
    for i, nodeid in enumerate(nodeids):
        done[base + i] = (nodeid, hits.get(i, []), calls[i])  # type: ignore[assignment]


def _merge_outliers(into: OutlierStats, part: OutlierStats, base: int) -> None:
    for mine, theirs in ((into.latency, part.latency), (into.tokens, part.tokens)):
        for key, g in theirs.items():
            traces = _shifted(g.traces, base)
            top = [(v, s, t + base) for v, s, t in g.top]
            m = mine.get(key)
            if m is None:
                g.traces = traces
                g.top = top
                heapq.heapify(g.top)
                mine[key] = g
                continue
            m.values.extend(g.values)
            m.traces.extend(traces)
            m.top = heapq.nlargest(TOP_KEEP, m.top + top)
            heapq.heapify(m.top)
            m.floor = m.top[0][0] if len(m.top) >= TOP_KEEP else float("-inf")


def _shifted(traces: array, by: int) -> array:
    """Trace numbers plus ``by`` (numpy: imported by ``_scan_part`` while the other parts ran)."""
    import numpy as np

    if not len(traces):
        return array(traces.typecode)
    dtype = np.dtype(traces.typecode)
    return array(traces.typecode, (np.frombuffer(traces, dtype) + by).astype(dtype).tobytes())


def trace_ranges(path: str, parts: int) -> list[tuple[int, int]]:
    """``line_ranges`` with every cut moved forward to the first line of a different trace."""
    ranges = line_ranges(path, parts)
    size = ranges[-1][1]
    cuts = [0]
    with open(path, "rb") as fh:
        for a, _ in ranges[1:]:
            cuts.append(max(cuts[-1], _next_trace(fh, a, size)))
    cuts.append(size)
    return list(zip(cuts, cuts[1:], strict=False))


def _tid(line: bytes) -> str | None:
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    t = d.get("trace_id") if type(d) is dict else None
    return t if isinstance(t, str) else None


def _next_trace(fh: BinaryIO, at: int, size: int) -> int:
    """The offset of the first line at or after ``at`` (a line start) whose trace differs from the
    trace of the first span line there; ``at`` when none is found nearby (the split then gives up)."""
    fh.seek(at)
    pos = at
    first: str | None = None
    for k, line in enumerate(fh):
        if k > BOUNDARY_LINES:
            break
        tid = _tid(line)
        if tid is not None:
            if first is None:
                first = tid
            elif tid != first:
                return pos
        pos += len(line)
    return at if pos < size else size
