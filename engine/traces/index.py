"""``TraceIndex``: per-span byte offsets and per-trace rollups of one canonical JSONL file.

Built by one streaming pass (``canonical_reader.scan``), then a per-trace structural
pass (duplicates, orphans, parent cycles) that works on whole traces with C-level set
operations, so bad structure costs nothing on good data. Cached (``index_cache``) and
extended in place when the file only grew.
"""

from __future__ import annotations

import gc
import os
from array import array
from bisect import bisect_left, insort
from collections.abc import Iterable
from operator import itemgetter
from pathlib import Path
from typing import Any

from engine.traces import canonical_reader, content_index
from engine.traces.problems import MAX_EXAMPLES, Problems

MEMORY_CONTENT = 256 * 1024 * 1024  # larger uncached files get no content index (it would cost 1/16 of the file in RAM)
DUPLICATE = "duplicate_span"
ORPHAN = "orphan_span"
CYCLE = "parent_cycle"


class TraceIndex:
    """Index of one canonical JSONL file: span arrays in file order + one rollup row per trace.

    ``cols[F][t]`` is field ``F`` (``canonical_reader.N``, ``ERR``, ``START_NS``...) of trace ``t``;
    ``tspans[t]`` lists trace ``t``'s span numbers in file order; ``broken`` holds span
    numbers whose parent link was cut to break a cycle (readers treat them as roots).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.state = canonical_reader.ScanState()
        self.problems = Problems()
        self.end = 0  # bytes scanned
        self.lineno = 0
        self.complete = True  # the scan ended on a newline (an append can continue from ``end``)
        self.broken: set[int] = set()
        self.renumbered = False  # the latest scan dropped spans: cached span arrays must be rewritten
        self.content: content_index.ContentIndex | None = None  # block filters for regex questions (None: scan everything)

    # -- convenient views -------------------------------------------------------------
    @property
    def trace_ids(self) -> list[str]:
        return self.state.tids

    @property
    def cols(self) -> list[list[Any]]:
        return self.state.cols

    @property
    def rows(self) -> list[list[Any]]:
        """Every trace's rollup as a list (materialized: for tests and reports, not for loops over many)."""
        return [list(r) for r in zip(*self.state.cols, strict=True)] if self.state.tids else []

    def row(self, t: int) -> list[Any]:
        return self.state.row(t)

    @property
    def span_count(self) -> int:
        return len(self.state.off)

    def spans_of(self, t: int) -> array:
        return self.state.tspans[t]

    # -- building ---------------------------------------------------------------------
    @classmethod
    def build(cls, path: str | os.PathLike[str], label: str | None = None, content: bool = True) -> TraceIndex:
        """Cold build: scan the whole file, then check structure of every trace.

        ``content``: also build the content index in memory (files up to ``MEMORY_CONTENT`` bytes;
        the cache builds it into a file instead).
        """
        idx = cls(str(path))
        idx.extend(label=label)
        if content:
            idx.content_in_memory()
        return idx

    def content_in_memory(self) -> None:
        """Content filters for the indexed bytes, held in memory (skipped for large files: no pruning)."""
        self.content = None
        if self.end <= MEMORY_CONTENT:
            self.content = content_index.ContentIndex(content_index.build_bytes(self.path, self.end), self.end)

    def extend(self, label: str | None = None) -> None:
        """Scan from ``self.end`` to EOF (all of it for a fresh index) and re-check touched traces."""
        st = self.state
        self.renumbered = False
        self.content = None  # describes fewer bytes than the index will: whoever keeps one re-extends it
        first_new = len(st.off)
        enabled = gc.isenabled()
        gc.disable()  # the scan allocates millions of short-lived dicts and keeps no cycles
        try:
            self.end, self.lineno = canonical_reader.scan(
                self.path, st, self.problems, self.end, self.lineno, label or self.path
            )
        finally:
            if enabled:
                gc.enable()
        self.complete = self.ends_with_newline()
        touched = set(st.tr[first_new:])  # traces that got spans in this scan
        self.check_structure(touched, label or self.path)
        for t in touched:
            canonical_reader.finish_row(st.cols, t)

    def ends_with_newline(self) -> bool:
        if self.end == 0:
            return True
        with open(self.path, "rb") as fh:
            fh.seek(self.end - 1)
            return fh.read(1) == b"\n"

    # -- structure --------------------------------------------------------------------
    def check_structure(self, traces: Iterable[int], label: str) -> None:
        """Duplicates (keep first), orphans (keep, count), parent cycles (cut one link, count)."""
        st = self.state
        sid, pid, cols = st.sid, st.pid, st.cols
        c_orph, c_cyc = cols[canonical_reader.ORPHANS], cols[canonical_reader.CYCLES]
        removed: list[int] = []
        self._pending: list[tuple[int, str]] = []
        ids: tuple[int, ...] | array[int]  # a trace's span ids: an array slice or itemgetter's tuple
        pids: tuple[int, ...] | array[int]
        for t in traces:
            idxs = st.tspans[t]
            n = len(idxs)
            old_orph, old_cyc = c_orph[t], c_cyc[t]
            if n == 1:
                i = idxs[0]
                orph = 1 if pid[i] and i not in self.broken else 0
                self._set_counts(t, orph, 0, old_orph, old_cyc, (i,), (pid[i],), {pid[i]})
                continue
            if idxs[-1] - idxs[0] + 1 == n:  # contiguous: slices are C-speed
                a, b = idxs[0], idxs[-1] + 1
                ids, pids = sid[a:b], pid[a:b]
            else:
                get = itemgetter(*idxs)
                ids, pids = get(sid), get(pid)
            ids_set = set(ids)
            if len(ids_set) != n:
                dup = self._drop_duplicates(t, ids)
                removed.extend(dup)
                idxs = st.tspans[t]
                kept = itemgetter(*idxs) if len(idxs) > 1 else None
                ids = kept(sid) if kept else (sid[idxs[0]],)
                pids = kept(pid) if kept else (pid[idxs[0]],)
                n = len(idxs)
            parents = set(pids)
            parents.discard(0)
            missing = parents - ids_set
            orph = sum(1 for p in pids if p in missing) if missing else 0
            cyc = 0
            inner = parents & ids_set  # a cycle (length >= 2) consists of spans that are parents
            if len(inner) > 1:
                parent_of = dict(zip(ids, pids, strict=False))
                if any(parent_of.get(x, 0) in ids_set for x in inner):
                    cyc = self._break_cycles(idxs, ids, parent_of, ids_set)
            self._set_counts(t, orph, cyc, old_orph, old_cyc, idxs, pids, missing)
        self._resolve_examples(label)
        if removed:
            self._compact(set(removed))

    def _set_counts(
        self, t: int, orph: int, cyc: int, old_orph: int, old_cyc: int, idxs: Any, pids: Any, missing: Any
    ) -> None:
        """Store a trace's orphan/cycle counts; adjust the totals by the change (appends re-check traces)."""
        self.state.cols[canonical_reader.ORPHANS][t], self.state.cols[canonical_reader.CYCLES][t] = orph, cyc
        if orph == old_orph and cyc == old_cyc:  # the common case: nothing changed (0 and 0)
            return
        p = self.problems
        for reason, new, old in ((ORPHAN, orph, old_orph), (CYCLE, cyc, old_cyc)):
            if new != old:
                p.repaired[reason] += new - old
                if new > old and len(p.examples) + len(self._pending) < MAX_EXAMPLES:
                    if reason == ORPHAN:
                        at = next(i for i, q in zip(idxs, pids, strict=True) if q in missing)
                    else:
                        at = min(i for i in idxs if i in self.broken)
                    self._pending.append((at, reason))
                if p.repaired[reason] <= 0:
                    del p.repaired[reason]

    def _drop_duplicates(self, t: int, ids: tuple[int, ...] | array) -> list[int]:
        """Keep the first span of each span id in trace ``t``; return the dropped span numbers."""
        st = self.state
        seen: set[int] = set()
        keep = array("i")
        dropped: list[int] = []
        for i, k in zip(st.tspans[t], ids, strict=True):
            if k in seen:
                dropped.append(i)
                self.problems.skipped[DUPLICATE] += 1
                if len(self.problems.examples) + len(self._pending) < MAX_EXAMPLES:
                    self._pending.append((i, DUPLICATE))
            else:
                seen.add(k)
                keep.append(i)
        st.tspans[t] = keep
        self._recompute_row(t)
        return dropped

    def drop_spans(self, t: int, numbers: set[int]) -> None:
        """Remove span numbers from trace ``t`` and recompute its rollup (the store's cross-file duplicates).

        The span arrays keep them (offsets still describe the file), so ``span_count`` is
        unchanged: the caller accounts for what it dropped. Never saved to the cache.
        """
        st = self.state
        st.tspans[t] = array("i", (i for i in st.tspans[t] if i not in numbers))
        self._recompute_row(t)

    def _break_cycles(
        self, idxs: array, ids: Any, parent_of: dict[int, int], ids_set: set[int]
    ) -> int:
        """Walk parent links; each cycle found is cut at its first span in file order."""
        state: dict[int, int] = {}  # 1 = reaches a root, 2 = on the current walk
        by_id = dict(zip(ids, idxs, strict=False))
        cycles = sum(1 for i in idxs if i in self.broken)  # cuts made by an earlier scan still count
        for start in ids:
            path = []
            x = start
            while x in ids_set and x not in state:
                state[x] = 2
                path.append(x)
                p = parent_of.get(x, 0)
                if by_id.get(x) in self.broken:
                    p = 0
                x = p
            if x in state and state[x] == 2:  # closed a loop: cut the earliest span of it
                loop = path[path.index(x) :]
                cut = min(by_id[y] for y in loop)
                self.broken.add(cut)
                cycles += 1
            for y in path:
                state[y] = 1
        return sum(1 for i in idxs if i in self.broken) if cycles else 0

    def _recompute_row(self, t: int) -> None:
        """Rebuild trace ``t``'s rollup from its kept spans (after dropping duplicates)."""
        st = self.state
        row = canonical_reader.new_row()
        row[canonical_reader.ORPHANS], row[canonical_reader.CYCLES] = st.cols[canonical_reader.ORPHANS][t], st.cols[canonical_reader.CYCLES][t]
        with open(self.path, "rb") as fh:
            for i in st.tspans[t]:
                fh.seek(st.off[i])
                d = read_json(fh.read(st.ln[i]))
                facts: tuple[Any, ...] | str | None = canonical_reader.fast_facts(d) if i not in st.slow else None
                if facts is None:
                    facts = canonical_reader.span_facts(d)
                if not isinstance(facts, str):
                    canonical_reader.fold(st, row, facts, st.ln[i])
        st.set_row(t, row)

    def _compact(self, removed: set[int]) -> None:
        """Drop removed span numbers from the span arrays and renumber what points past them.

        Slices between the removed numbers are copied at C speed; only traces with spans after
        the first removed number are renumbered (duplicates usually sit in an appended tail).
        """
        st = self.state
        self.renumbered = True
        rem = sorted(removed)
        for i in rem:
            insort(st.gaps, st.off[i])
        bounds = [-1, *rem, len(st.off)]
        for name in ("off", "ln", "tr", "sid", "pid"):
            old = getattr(st, name)
            new = array(old.typecode)
            for lo, hi in zip(bounds, bounds[1:], strict=False):
                new.extend(old[lo + 1 : hi])
            setattr(st, name, new)
        first = rem[0]

        def shift(i: int) -> int:
            return i - bisect_left(rem, i)

        st.tspans = [
            sp if not sp or sp[-1] < first else array("i", (shift(i) for i in sp if i not in removed))
            for sp in st.tspans
        ]
        st.slow = {shift(i) for i in st.slow if i not in removed}
        self.broken = {shift(i) for i in self.broken if i not in removed}

    def _resolve_examples(self, label: str) -> None:
        """Turn pending (span number, reason) examples into ``file:line`` in one pass over the file."""
        pending = sorted(self._pending)
        self._pending = []
        if not pending:
            return
        lines = self.lines_of([i for i, _ in pending])
        for (_i, reason), line in zip(pending, lines, strict=True):
            if len(self.problems.examples) < MAX_EXAMPLES:
                self.problems.examples.append(f"{label}:{line}: {reason}")

    # -- helpers ----------------------------------------------------------------------
    def lines_of(self, spans: list[int]) -> list[int]:
        """1-based line numbers of span numbers: one line per span plus the non-span lines before it."""
        st = self.state
        return [i + 1 + bisect_left(st.gaps, st.off[i]) for i in spans]

    def read_raw(self, i: int, fh: Any = None) -> bytes:
        """The raw line of span ``i`` (newline stripped)."""
        st = self.state
        if fh is None:
            with open(self.path, "rb") as f:
                f.seek(st.off[i])
                return f.read(st.ln[i]).rstrip(b"\r\n")
        fh.seek(st.off[i])
        return fh.read(st.ln[i]).rstrip(b"\r\n")

    def summary(self) -> dict[str, int]:
        """Totals for reports: spans, traces, error spans."""
        cols = self.state.cols
        return {
            "spans": len(self.state.off),
            "traces": len(self.state.tids),
            "error_spans": sum(cols[canonical_reader.ERR]),
        }


def read_json(raw: bytes) -> Any:
    """Parse one stored line; invalid UTF-8 is replaced (as the scan did) rather than fatal."""
    import orjson

    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return orjson.loads(raw.decode("utf-8", errors="replace"))
        except orjson.JSONDecodeError:
            return None


def build_index(path: str | Path) -> TraceIndex:
    """Cold, uncached build (what ``--no-cache`` and the benchmark's cold case use)."""
    return TraceIndex.build(str(path))
