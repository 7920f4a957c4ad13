"""``TraceStore``: one dataset over one or many trace files of any format, read through the index.

Non-canonical inputs (OTLP, OTel SDK, Agents SDK, transcripts...) are converted once by
``ingest.convert`` into canonical JSONL inside the cache directory and then indexed by the
same fast path as canonical files. Queries are answered from per-trace rollups; spans
are read by byte offset and parsed only when asked for. Every result respects a byte
budget (default 64 KB of JSON) and says what to ask next when it had to cut.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.traces import canonical_reader, ingest, query_models
from engine.traces.budget import (
    DEFAULT_BUDGET,
    DISCOVERY_CAP,
    SURGICAL_CAP,
    cap_list,
    cap_span,
    size_of,
    take_within,
)
from engine.traces.content_index import literal_query
from engine.traces.converted import converted as _converted
from engine.traces.formats.canonical import canonicalize_record
from engine.traces.index import CYCLE, DUPLICATE, ORPHAN, TraceIndex, read_json
from engine.traces.index_cache import default_cache_dir, open_index
from engine.traces.normalize import CATEGORIES
from engine.traces.problems import Problems
from engine.traces.regex_scan import compile_guarded, matching_spans
from engine.traces.render import render
from engine.traces.span import STATUS_ERROR, Span, ns_to_iso, to_ns

_CANON_KEYS = ("trace_state", "resource", "scope")
_PRUNE_MIN_SPANS = 32  # traces with fewer spans are searched whole (the content filters would cost more)


@dataclass
class FileInfo:
    """One input file: what it was, what was indexed, how the index was obtained."""

    path: str
    format: str
    indexed_path: str
    how: str
    spans: int = 0
    traces: int = 0
    skipped: int = 0
    problems: Problems = field(default_factory=Problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "spans": self.spans,
            "traces": self.traces,
            "skipped": self.skipped,
            "skipped_by_reason": dict(sorted(self.problems.skipped.items())),
            "repaired": dict(sorted(self.problems.repaired.items())),
            "index": self.how,
        }


class TraceStore:
    """Read/query API over indexed trace files; results are pydantic models within a byte budget."""

    def __init__(self, indexes: list[TraceIndex], files: list[FileInfo], budget: int = DEFAULT_BUDGET):
        self.indexes = indexes
        self.files = files
        self.budget = budget
        self.problems = Problems()
        # set by ``open`` when files were converted into a temp dir: keeps them alive as long as the store
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._names_by_mask: dict[tuple[int, int, int], list[str]] = {}
        for f in files:
            self.problems.merge(f.problems)
        # global trace number -> [(file number, trace number in that file)]; ids merge across files
        self._tids: list[str] = []
        self._parts: list[list[tuple[int, int]]] = []
        self._by_id: dict[str, int] = {}
        for fi, idx in enumerate(indexes):
            for ti, tid in enumerate(idx.trace_ids):
                g = self._by_id.get(tid)
                if g is None:
                    self._by_id[tid] = len(self._tids)
                    self._tids.append(tid)
                    self._parts.append([(fi, ti)])
                else:
                    self._parts[g].append((fi, ti))
        self._duplicates = self._drop_cross_file_duplicates()

    def _drop_cross_file_duplicates(self) -> int:
        """A span in two files (a copied file, overlapping exports of one trace) counts once: the first file's.

        Only traces present in several files are checked, with C-level set operations on the
        64-bit span ids the index already holds; the later parts lose the repeated spans
        (their rollups are recomputed) and each is tallied as ``duplicate_span``.
        """
        infos = [f for f in self.files if f.how != "none"]
        if len(infos) != len(self.indexes):  # not built by ``open``: no per-file counts to adjust
            infos = []
        dropped_total = 0
        for g, parts in enumerate(self._parts):
            if len(parts) < 2:
                continue
            seen: set[int] = set()
            kept_parts: list[tuple[int, int]] = []
            for fi, ti in parts:
                idx = self.indexes[fi]
                sid = idx.state.sid
                nums = idx.spans_of(ti)
                ids = [sid[n] for n in nums]
                if seen.isdisjoint(ids):
                    seen.update(ids)
                    kept_parts.append((fi, ti))
                    continue
                dup = {n for n, k in zip(nums, ids, strict=True) if k in seen}
                seen.update(ids)
                idx.drop_spans(ti, dup)
                dropped_total += len(dup)
                file_problems = infos[fi].problems if infos else Problems()
                first = sorted(dup)[:3]
                for n, line in zip(first, idx.lines_of(first), strict=True):
                    where = f"{infos[fi].path if infos else idx.path}:{line}"
                    detail = f"span {sid[n]:016x} of trace {self._tids[g]} already read from another file"
                    file_problems.skip(DUPLICATE, where, detail)
                    self.problems.skip(DUPLICATE, where, detail)
                file_problems.skipped[DUPLICATE] += len(dup) - len(first)
                self.problems.skipped[DUPLICATE] += len(dup) - len(first)
                if infos:
                    infos[fi].spans -= len(dup)
                    infos[fi].skipped += len(dup)
                if len(idx.spans_of(ti)):
                    kept_parts.append((fi, ti))
                    continue
                # the whole part was a repeat: it no longer counts as a trace of that file, nor do its repairs
                cols = idx.state.cols
                for reason, slot in ((ORPHAN, canonical_reader.ORPHANS), (CYCLE, canonical_reader.CYCLES)):
                    if cols[slot][ti]:
                        for p in (file_problems, self.problems):
                            p.repaired[reason] -= cols[slot][ti]
                            if p.repaired[reason] <= 0:
                                del p.repaired[reason]
                        cols[slot][ti] = 0
                if infos:
                    infos[fi].traces -= 1
            self._parts[g] = kept_parts
        return dropped_total

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        cache_dir: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        budget: int = DEFAULT_BUDGET,
        jobs: int | None = None,
    ) -> TraceStore:
        """Index (or reuse the cached index of) every file; directories expand to their trace files.

        Missing or unreadable files are counted under ``unreadable_file``, never raised. A cold
        index of a large file is built by ``jobs`` processes (None: one per core for large files).
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        tmpdir: tempfile.TemporaryDirectory[str] | None = None
        indexes: list[TraceIndex] = []
        files: list[FileInfo] = []
        seen: set[str] = set()
        for path in ingest.expand_paths(paths):
            label = str(path)
            real = os.path.realpath(path)
            if real in seen:  # the same file named twice (or via a symlink) is one input, not two
                continue
            seen.add(real)
            if not path.is_file():
                fi = FileInfo(label, "unknown", "", "none")
                fi.problems.skip("unreadable_file", label, "not a regular file" if path.exists() else "no such file")
                files.append(fi)
                continue
            try:
                fmt = ingest.detect_format(path)
                target, conv = str(path), None
                cached = use_cache
                if fmt != "canonical" or path.name.endswith(".gz"):
                    try:
                        if not use_cache:
                            raise PermissionError("no cache")
                        target, conv = _converted(path, fmt, cdir)
                    except OSError:  # --no-cache or an unusable cache dir: convert into a temp dir
                        if tmpdir is None:
                            tmpdir = tempfile.TemporaryDirectory(prefix="halo-convert-")
                        target, conv = _converted(path, fmt, Path(tmpdir.name))
                        cached = False
                idx, how = open_index(
                    target, cdir, use_cache=cached, label=label if conv is None else f"{label}#converted", jobs=jobs
                )
            except OSError as exc:
                fi = FileInfo(label, "unknown", "", "none")
                fi.problems.skip("unreadable_file", label, f"{type(exc).__name__}: {exc}")
                files.append(fi)
                continue
            fi = FileInfo(label, fmt, target, how)
            if conv is not None:
                fi.problems.merge(conv)
            fi.problems.merge(idx.problems)
            fi.spans = idx.span_count
            fi.traces = len(idx.trace_ids)
            fi.skipped = sum(fi.problems.skipped.values())
            files.append(fi)
            indexes.append(idx)
        store = cls(indexes, files, budget)
        store._tmpdir = tmpdir  # keeps converted files alive as long as the store
        return store

    # ------------------------------------------------------------------ iteration
    @property
    def trace_ids(self) -> list[str]:
        """Every trace id, in first-appearance order (files in the order given)."""
        return list(self._tids)

    @property
    def span_count(self) -> int:
        return sum(i.span_count for i in self.indexes) - self._duplicates

    def __len__(self) -> int:
        return len(self._tids)

    def iter_traces(self) -> Iterator[tuple[str, list[Span]]]:
        """``(trace_id, spans)`` per trace: traces in first-appearance order, spans in file order."""
        handles = [open(i.path, "rb") for i in self.indexes]
        try:
            for g, tid in enumerate(self._tids):
                spans: list[Span] = []
                for fi, ti in self._parts[g]:
                    spans.extend(self._read_spans(fi, self.indexes[fi].spans_of(ti), handles[fi]))
                yield tid, spans
        finally:
            for h in handles:
                h.close()

    def iter_spans(self) -> Iterator[Span]:
        """Every kept span, trace by trace."""
        for _, spans in self.iter_traces():
            yield from spans

    def spans(self, trace_id: str) -> list[Span]:
        """All spans of one trace (repaired, uncapped); ``KeyError`` when unknown."""
        g = self._by_id[trace_id]
        out: list[Span] = []
        for fi, ti in self._parts[g]:
            out.extend(self._read_spans(fi, self.indexes[fi].spans_of(ti)))
        return out

    def _read_spans(self, fi: int, numbers: Any, fh: Any = None) -> list[Span]:
        """Parse spans by number; contiguous runs are read with one ``read``."""
        idx = self.indexes[fi]
        st = idx.state
        own = fh is None
        if own:
            fh = open(idx.path, "rb")
        try:
            out: list[Span] = []
            nums = list(numbers)
            plain = not st.slow and not idx.broken  # no span needs re-coercion: parse lines directly
            loads = orjson.loads
            k = 0
            while k < len(nums):
                j = k
                while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
                    j += 1
                a = st.off[nums[k]]
                fh.seek(a)
                blob = fh.read(st.off[nums[j]] + st.ln[nums[j]] - a)
                if plain and blob.count(b"\n") == j - k + 1:  # nothing but these spans' lines
                    try:
                        run = [loads(line) for line in blob.split(b"\n")[:-1]]
                    except orjson.JSONDecodeError:  # the file changed under us, or bad UTF-8: slow path
                        run = []
                    if len(run) == j - k + 1 and all(map(_looks_canonical, run)):
                        out.extend(run)
                        k = j + 1
                        continue
                for n in nums[k : j + 1]:
                    o = st.off[n] - a
                    span = self._span_from_raw(idx, n, blob[o : o + st.ln[n]])
                    if span is not None:
                        out.append(span)
                k = j + 1
            return out
        finally:
            if own:
                fh.close()

    @staticmethod
    def _span_from_raw(idx: TraceIndex, n: int, raw: bytes) -> Span | None:
        d = read_json(raw)
        if n in idx.state.slow or not _looks_canonical(d):
            d, _, _ = canonicalize_record(d)
            if d is None:
                return None
            if idx.state.pid[n] == 0 and d.get("parent_span_id"):
                d["parent_span_id"] = ""  # self-parent cut by the scan
        if n in idx.broken:
            d["parent_span_id"] = ""  # link cut to break a parent cycle
        return d

    # ------------------------------------------------------------------ filters
    def _match(self, filters: query_models.TraceFilters | None) -> list[int]:
        """Global trace numbers passing ``filters`` (index-only predicates, then the regex)."""
        f = filters or query_models.TraceFilters()
        compiled = compile_guarded(f.regex_pattern) if f.regex_pattern is not None else None  # fail fast
        lo = _time_arg(f.start_time_gte, "start_time_gte")
        hi = _time_arg(f.end_time_lte, "end_time_lte")
        wanted: list[dict[int, int]] = []
        for idx in self.indexes:
            w: dict[int, int] = {}
            for slot, names in (
                (canonical_reader.M_MODEL, f.model_names),
                (canonical_reader.M_SERVICE, f.service_names),
                (canonical_reader.M_AGENT, f.agent_names),
                (canonical_reader.M_TOOL, f.tool_names),
            ):
                if names is not None:
                    w[slot] = _mask(idx, names)
            wanted.append(w)
        cats = None
        if f.categories is not None:
            bad = [c for c in f.categories if c not in canonical_reader.CAT_SLOT]
            if bad:
                raise ValueError(f"unknown categories {bad}; known: {', '.join(CATEGORIES)}")
            cats = [canonical_reader.CAT_SLOT[c] for c in f.categories]
        outcomes = None
        if f.test_outcome is not None:
            outcomes = {f.test_outcome} if isinstance(f.test_outcome, str) else set(f.test_outcome)
        out: list[int] = list(range(len(self._tids)))
        narrow = self._narrow
        if f.has_errors is True:
            out = narrow(out, lambda fi, c, t: c[canonical_reader.ERR][t] > 0, any)
        elif f.has_errors is False:
            out = narrow(out, lambda fi, c, t: c[canonical_reader.ERR][t] == 0, all)
        for slot in wanted[0] if wanted else ():
            out = narrow(out, lambda fi, c, t, s=slot: c[s][t] & wanted[fi][s], any)
        if cats is not None:
            out = narrow(out, lambda fi, c, t: any(c[s][t] for s in cats), any)
        if outcomes is not None:
            out = narrow(out, lambda fi, c, t: c[canonical_reader.OUTCOME][t] in outcomes, any)
        if f.test_nodeid is not None:
            node = f.test_nodeid
            out = narrow(out, lambda fi, c, t: node in (c[canonical_reader.NODEID][t] or ""), any)
        if lo is not None:
            out = narrow(out, lambda fi, c, t: c[canonical_reader.START_NS][t] >= lo, all)
        if hi is not None:
            out = narrow(out, lambda fi, c, t: c[canonical_reader.END_NS][t] <= hi, all)
        if compiled is not None and out:
            out = self._regex_filter(out, *compiled)
        return out

    def _narrow(self, traces: list[int], pred: Any, agg: Any) -> list[int]:
        """Keep traces whose parts satisfy ``pred(file, columns, trace)`` (``agg`` = any/all over parts)."""
        if len(self.indexes) == 1:  # one file: global trace g is the file's trace g
            c = self.indexes[0].state.cols
            return [g for g in traces if pred(0, c, g)]
        cols = [i.state.cols for i in self.indexes]
        return [g for g in traces if agg(pred(fi, cols[fi], ti) for fi, ti in self._parts[g])]

    def _regex_filter(self, traces: list[int], brx: Any, trx: Any) -> list[int]:
        """Traces (of ``traces``) with a span whose raw line matches; one mmap pass per file, or
        only the candidates' spans when the index filters left few."""
        keep: set[int] = set()
        all_traces = len(traces) == len(self._tids)
        for fi, idx in enumerate(self.indexes):
            if all_traces:  # every trace: no per-trace list to build
                if not idx.span_count:
                    continue
                local: list[int] = []
            else:
                local = [ti for g in traces for f2, ti in self._parts[g] if f2 == fi]
                if not local:
                    continue
            cand = None
            if not all_traces:
                nspans = sum(len(idx.spans_of(ti)) for ti in local)
                if nspans * 4 < idx.span_count:  # few candidates: read only their spans
                    cand = [n for ti in local for n in idx.spans_of(ti)]
            hits = matching_spans(idx.path, idx.state.off, idx.state.ln, brx, trx, cand, content=idx.content)
            tr = idx.state.tr
            for n in hits:
                keep.add(self._by_id[idx.trace_ids[tr[n]]])
        return [g for g in traces if g in keep]

    # ------------------------------------------------------------------ summaries
    def _summary_row(self, g: int) -> dict[str, Any]:
        parts = self._parts[g]
        if len(parts) == 1:  # the common case, without the cross-file sums (bulk export walks every trace)
            return self._single_part_row(g, *parts[0])
        rows = [(self.indexes[fi], self.indexes[fi].row(ti)) for fi, ti in parts]
        start = min(r[canonical_reader.START_NS] for _, r in rows)
        end = max(r[canonical_reader.END_NS] for _, r in rows)
        nodeid = next((r[canonical_reader.NODEID] for _, r in rows if r[canonical_reader.NODEID]), None)
        outcome = next((r[canonical_reader.OUTCOME] for _, r in rows if r[canonical_reader.OUTCOME]), None)
        return dict(
            trace_id=self._tids[g],
            span_count=sum(r[canonical_reader.N] for _, r in rows),
            start_time=ns_to_iso(start),
            end_time=ns_to_iso(end),
            duration_ms=round((end - start) / 1e6, 3),
            has_errors=any(r[canonical_reader.ERR] for _, r in rows),
            error_span_count=sum(r[canonical_reader.ERR] for _, r in rows),
            service_names=cap_list(_names(rows, canonical_reader.M_SERVICE), 20),
            model_names=cap_list(_names(rows, canonical_reader.M_MODEL), 20),
            agent_names=cap_list(_names(rows, canonical_reader.M_AGENT), 20),
            tool_names=cap_list(_names(rows, canonical_reader.M_TOOL), 30),
            categories={c: n for c in CATEGORIES if (n := sum(r[canonical_reader.CAT_SLOT[c]] for _, r in rows))},
            total_input_tokens=sum(r[canonical_reader.TIN] for _, r in rows),
            total_output_tokens=sum(r[canonical_reader.TOUT] for _, r in rows),
            test_nodeid=nodeid[:500] if nodeid else None,
            test_outcome=outcome,
            raw_jsonl_bytes=sum(r[canonical_reader.BYTES] for _, r in rows),
        )

    def _single_part_row(self, g: int, fi: int, ti: int) -> dict[str, Any]:
        idx = self.indexes[fi]
        r = idx.row(ti)
        start, end, nodeid = r[canonical_reader.START_NS], r[canonical_reader.END_NS], r[canonical_reader.NODEID]

        def names(slot: int, cap: int) -> list[str]:
            mask = r[slot]
            if not mask:
                return []
            key = (fi, slot, mask)
            cached = self._names_by_mask.get(key)
            if cached is None:  # the same sets of tools/models/agents recur across traces
                cached = self._names_by_mask[key] = cap_list(sorted(set(_bits(idx, mask))), cap)
            return list(cached)

        return dict(
            trace_id=self._tids[g], span_count=r[canonical_reader.N], start_time=ns_to_iso(start), end_time=ns_to_iso(end),
            duration_ms=round((end - start) / 1e6, 3), has_errors=bool(r[canonical_reader.ERR]), error_span_count=r[canonical_reader.ERR],
            service_names=names(canonical_reader.M_SERVICE, 20), model_names=names(canonical_reader.M_MODEL, 20),
            agent_names=names(canonical_reader.M_AGENT, 20), tool_names=names(canonical_reader.M_TOOL, 30),
            categories={c: r[canonical_reader.CAT_SLOT[c]] for c in CATEGORIES if r[canonical_reader.CAT_SLOT[c]]},
            total_input_tokens=r[canonical_reader.TIN], total_output_tokens=r[canonical_reader.TOUT],
            test_nodeid=nodeid[:500] if nodeid else None, test_outcome=r[canonical_reader.OUTCOME] or None,
            raw_jsonl_bytes=r[canonical_reader.BYTES],
        )

    def _summary(self, g: int) -> query_models.TraceSummary:
        return query_models.TraceSummary.model_construct(**self._summary_row(g))  # built from the index: already valid

    def summary_rows(self) -> Iterator[dict[str, Any]]:
        """``summary()`` of every trace as plain dicts, in first-appearance order (no models: for bulk export)."""
        for g in range(len(self._tids)):
            yield self._summary_row(g)

    def summary(self, trace_id: str) -> query_models.TraceSummary:
        """The index-only summary of one trace."""
        return self._summary(self._by_id[trace_id])

    def match_trace_ids(self, filters: query_models.TraceFilters | None = None) -> list[str]:
        """Ids of the traces passing ``filters``, in store order (one scan, for callers that select by filter)."""
        return [self._tids[g] for g in self._match(filters)]

    # ------------------------------------------------------------------ the tools
    def count_traces(self, filters: query_models.TraceFilters | None = None) -> query_models.TraceCountResult:
        return query_models.TraceCountResult(total=len(self._match(filters)))

    def query_traces(
        self, filters: query_models.TraceFilters | None = None, limit: int = 50, offset: int = 0
    ) -> query_models.TraceQueryResult:
        """A page of trace summaries; cut to the byte budget with a note naming the next offset."""
        limit = max(1, min(int(limit), 500))
        offset = max(0, int(offset))
        matched = self._match(filters)
        page = [self._summary(g) for g in matched[offset : offset + limit]]
        kept = take_within(page, self.budget - 600)
        note = ""
        if len(kept) < len(page):
            note = (
                f"returned {len(kept)} of {len(page)} requested summaries to stay within {self.budget:,} bytes; "
                f"continue with offset={offset + len(kept)}"
            )
        elif offset + len(page) < len(matched):
            note = f"{len(matched) - offset - len(page)} more traces match; continue with offset={offset + len(page)}"
        return query_models.TraceQueryResult(traces=kept, total=len(matched), note=note)

    def get_dataset_overview(self, filters: query_models.TraceFilters | None = None) -> query_models.DatasetOverview:
        """Rollup of the filtered traces; facet lists and the error taxonomy are capped."""
        matched = self._match(filters)
        cats: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        facet: dict[int, set[str]] = {s: set() for s in (canonical_reader.M_SERVICE, canonical_reader.M_MODEL, canonical_reader.M_AGENT, canonical_reader.M_TOOL)}
        spans = err_spans = err_traces = tin = tout = nbytes = 0
        lo = hi = None
        for g in matched:
            rows = [(self.indexes[fi], self.indexes[fi].row(ti)) for fi, ti in self._parts[g]]
            e = 0
            for idx, r in rows:
                spans += r[canonical_reader.N]
                e += r[canonical_reader.ERR]
                tin += r[canonical_reader.TIN]
                tout += r[canonical_reader.TOUT]
                nbytes += r[canonical_reader.BYTES]
                for c in CATEGORIES:
                    if r[canonical_reader.CAT_SLOT[c]]:
                        cats[c] += r[canonical_reader.CAT_SLOT[c]]
                for slot, acc in facet.items():
                    if r[slot]:
                        acc.update(_bits(idx, r[slot]))
                lo = r[canonical_reader.START_NS] if lo is None else min(lo, r[canonical_reader.START_NS])
                hi = r[canonical_reader.END_NS] if hi is None else max(hi, r[canonical_reader.END_NS])
            outcome = next((r[canonical_reader.OUTCOME] for _, r in rows if r[canonical_reader.OUTCOME]), None)
            if outcome:
                outcomes[outcome] += 1
            err_spans += e
            err_traces += 1 if e else 0
        ov = query_models.DatasetOverview(
            total_traces=len(matched),
            total_spans=spans,
            earliest_start_time=ns_to_iso(lo) if lo is not None else "",
            latest_end_time=ns_to_iso(hi) if hi is not None else "",
            service_names=cap_list(sorted(facet[canonical_reader.M_SERVICE])),
            model_names=cap_list(sorted(facet[canonical_reader.M_MODEL])),
            agent_names=cap_list(sorted(facet[canonical_reader.M_AGENT])),
            tool_names=cap_list(sorted(facet[canonical_reader.M_TOOL]), 100),
            categories=dict(cats.most_common()),
            error_trace_count=err_traces,
            error_span_count=err_spans,
            test_outcomes=dict(outcomes.most_common()),
            total_input_tokens=tin,
            total_output_tokens=tout,
            raw_jsonl_bytes=nbytes,
            sample_trace_ids=[self._tids[g] for g in matched[:20]],
            error_taxonomy=self._error_taxonomy([g for g in matched if self._has_errors(g)]),
        )
        return self._fit_overview(ov)

    def _fit_overview(self, ov: query_models.DatasetOverview) -> query_models.DatasetOverview:
        """Shrink the taxonomy, then the facet lists, until the overview fits the budget."""
        while size_of(ov) > self.budget and ov.error_taxonomy:
            ov.error_taxonomy = ov.error_taxonomy[: len(ov.error_taxonomy) // 2]
            ov.note = "error taxonomy shortened to fit the byte budget"
        for n in (20, 5, 0):
            if size_of(ov) <= self.budget:
                break
            for name in ("service_names", "model_names", "agent_names", "tool_names"):
                vals = [v for v in getattr(ov, name) if not v.startswith("…+")]
                setattr(ov, name, cap_list(vals, n, 80))
            ov.categories = dict(list(ov.categories.items())[:10])
            ov.test_outcomes = dict(list(ov.test_outcomes.items())[:10])
            ov.note = "facet lists shortened to fit the byte budget; filter with query_traces to see more"
        return ov

    def _has_errors(self, g: int) -> bool:
        return any(self.indexes[fi].state.cols[canonical_reader.ERR][ti] for fi, ti in self._parts[g])

    def _error_taxonomy(self, traces: list[int], max_traces: int = 2000) -> list[query_models.ErrorTaxonomyGroup]:
        """Group error spans by (name, status message); reads only error traces (bounded)."""
        counts: Counter[tuple[str, str]] = Counter()
        where: dict[tuple[str, str], list[str]] = {}
        for g in traces[:max_traces]:
            tid = self._tids[g]
            for s in self.spans(tid):
                st = s.get("status") or {}
                if st.get("code") != STATUS_ERROR:
                    continue
                key = (str(s.get("name", ""))[:200], str(st.get("message") or "")[:200])
                counts[key] += 1
                lst = where.setdefault(key, [])
                if not lst or lst[-1] != tid:
                    lst.append(tid)
        return [
            query_models.ErrorTaxonomyGroup(
                span_name=name,
                status_message=msg,
                error_span_count=n,
                trace_count=len(set(where[(name, msg)])),
                example_trace_ids=sorted(set(where[(name, msg)]))[:3],
            )
            for (name, msg), n in counts.most_common(20)
        ]

    def view_trace(self, trace_id: str) -> query_models.TraceView:
        """All spans (values capped at 4 KB); over budget → an ``oversized`` summary saying what to ask next."""
        spans = self.spans(trace_id)
        capped = [cap_span(s, DISCOVERY_CAP) for s in spans]
        sizes = [size_of(s) for s in capped]
        if sum(sizes) + len(sizes) + 300 <= self.budget:
            return query_models.TraceView(trace_id=trace_id, spans=capped)
        return query_models.TraceView(trace_id=trace_id, spans=[], oversized=self._oversized(trace_id, spans, sizes))

    def _oversized(self, trace_id: str, spans: list[Span], sizes: list[int]) -> query_models.OversizedTraceSummary:
        order = sorted(range(len(spans)), key=lambda i: -sizes[i])
        largest = [
            {"span_id": spans[i].get("span_id"), "name": str(spans[i].get("name"))[:80], "bytes": sizes[i]}
            for i in order[:10]
        ]
        names = Counter(str(s.get("name"))[:80] for s in spans).most_common(10)
        errs = [s.get("span_id", "") for s in spans if (s.get("status") or {}).get("code") == STATUS_ERROR]
        total = sum(sizes)
        small = [spans[i].get("span_id", "") for i in sorted(order[10:], key=lambda i: sizes[i])[:20]]
        rec = (
            f"trace has {len(spans)} spans, {total:,} bytes after capping values (budget {self.budget:,}). "
            "Do not retry view_trace. Use render_trace(trace_id) for a compact outline, "
            "search_trace(trace_id, pattern) to find the spans you need, then view_spans(trace_id, [ids]) "
            "with a few ids"
        )
        if errs:
            rec += f"; error spans: {', '.join(errs[:10])}"
        if small:
            rec += f"; small spans you can view together: {', '.join(small[:10])}"
        return query_models.OversizedTraceSummary(
            trace_id=trace_id,
            span_count=len(spans),
            response_bytes=total,
            response_bytes_budget=self.budget,
            largest_spans=largest,
            top_span_names=names,
            error_span_ids=errs[:50],
            recommendation=rec,
        )

    def view_spans(self, trace_id: str, span_ids: list[str]) -> query_models.TraceView:
        """Named spans at a 16 KB per-value cap, lowered (then spans dropped) until the result fits."""
        g = self._by_id[trace_id]
        wanted = set(span_ids[:200])
        keys = set()
        for sid in wanted:
            try:
                keys.add(int(sid, 16))
            except (TypeError, ValueError):
                pass
        spans: list[Span] = []
        for fi, ti in self._parts[g]:  # parse only the named spans (a 50 MB neighbour is never read)
            sids = self.indexes[fi].state.sid
            nums = [n for n in self.indexes[fi].spans_of(ti) if sids[n] in keys]
            spans.extend(s for s in self._read_spans(fi, nums) if s.get("span_id") in wanted)
        found = {s.get("span_id") for s in spans}
        missing = [x for x in span_ids[:200] if x not in found]
        missing_note = f"not in this trace: {', '.join(map(str, missing[:20]))}" if missing else ""
        for cap in (SURGICAL_CAP, DISCOVERY_CAP, 1024, 256):
            capped = [cap_span(s, cap) for s in spans]
            sizes = [size_of(s) for s in capped]
            if sum(sizes) + len(sizes) + 1200 <= self.budget:
                note = f"attribute values capped at {cap:,} chars" if cap != SURGICAL_CAP else ""
                note = "; ".join(x for x in (note, missing_note) if x)
                return query_models.TraceView(trace_id=trace_id, spans=capped, note=note)
        kept = take_within(capped, self.budget - 1200)
        left = [s.get("span_id", "") for s in spans[len(kept) :]]
        return query_models.TraceView(
            trace_id=trace_id,
            spans=kept,
            note=(
                f"returned {len(kept)} of {len(spans)} spans (values capped at 256 chars) to stay within "
                f"{self.budget:,} bytes; ask view_spans again for: {', '.join(left[:40])}"
            ),
        )

    def search_trace(
        self, trace_id: str, regex_pattern: str, context_buffer_chars: int = 100, max_matches: int = 50
    ) -> query_models.TraceSearchResult:
        """Regex over each span's raw JSON line; bounded records, exact total count."""
        _, trx = compile_guarded(regex_pattern)
        g = self._by_id[trace_id]
        recs, total = self._search(g, None, trx, context_buffer_chars, max_matches)
        kept, note = self._fit_matches(recs, total)
        return query_models.TraceSearchResult(
            trace_id=trace_id,
            match_count=total,
            returned_match_count=len(kept),
            has_more=total > len(kept),
            matches=kept,
            note=note,
        )

    def search_span(
        self,
        trace_id: str,
        span_id: str,
        regex_pattern: str,
        context_buffer_chars: int = 100,
        max_matches: int = 50,
    ) -> query_models.SpanSearchResult:
        """Regex inside one span's raw JSON (for spans too large to view whole)."""
        _, trx = compile_guarded(regex_pattern)
        g = self._by_id[trace_id]
        recs, total = self._search(g, span_id, trx, context_buffer_chars, max_matches)
        if total == 0 and not self._has_span(g, span_id):
            raise KeyError(f"span_id={span_id!r} not found in trace_id={trace_id!r}")
        kept, note = self._fit_matches(recs, total)
        return query_models.SpanSearchResult(
            trace_id=trace_id,
            span_id=span_id,
            match_count=total,
            returned_match_count=len(kept),
            has_more=total > len(kept),
            matches=kept,
            note=note,
        )

    def _has_span(self, g: int, span_id: str) -> bool:
        try:
            k = int(span_id, 16)
        except ValueError:
            return False
        return any(self.indexes[fi].state.sid[n] == k for fi, ti in self._parts[g] for n in self.indexes[fi].spans_of(ti))

    def _search(
        self, g: int, span_id: str | None, trx: Any, ctx: int, max_matches: int
    ) -> tuple[list[query_models.SpanMatchRecord], int]:
        ctx = max(0, min(int(ctx), 2000))
        max_matches = max(1, min(int(max_matches), 500))
        want = None
        if span_id is not None:
            try:
                want = int(span_id, 16)
            except ValueError:
                raise KeyError(f"span_id={span_id!r} is not a hex span id") from None
        recs: list[query_models.SpanMatchRecord] = []
        total = 0
        k = 0
        tid = self._tids[g]
        query = literal_query(trx.pattern) if span_id is None else None
        for fi, ti in self._parts[g]:
            idx = self.indexes[fi]
            st = idx.state
            nums = idx.spans_of(ti)
            # spans whose line cannot hold the pattern's literals have no match to count: not read
            maybe = (
                idx.content.spans_may_match(st.off, st.ln, nums, query)
                if query is not None and idx.content is not None and len(nums) >= _PRUNE_MIN_SPANS
                else None
            )
            with open(idx.path, "rb") as fh:
                for j, n in enumerate(nums):
                    k += 1
                    if want is not None and st.sid[n] != want:
                        continue
                    if maybe is not None and not maybe[j]:
                        continue
                    raw = idx.read_raw(n, fh)
                    text = raw.decode("utf-8", errors="replace")
                    meta = None
                    for m in trx.finditer(text):
                        total += 1
                        if len(recs) >= max_matches:
                            continue
                        if meta is None:
                            meta = self._span_from_raw(idx, n, raw) or {}
                        status = meta.get("status") or {}
                        a, b = m.start(), m.end()
                        recs.append(
                            query_models.SpanMatchRecord(
                                trace_id=tid,
                                span_id=str(meta.get("span_id", "")),
                                span_index=k - 1,
                                span_name=str(meta.get("name", ""))[:200],
                                kind=str(meta.get("kind", "")),
                                status_code=str(status.get("code", "")),
                                parent_span_id=str(meta.get("parent_span_id", "")),
                                raw_jsonl_bytes=len(raw),
                                match_text=text[a : min(b, a + 1000)],
                                matched_context=text[max(0, a - ctx) : min(len(text), min(b, a + 1000) + ctx)],
                                match_start_char=a,
                                match_end_char=b,
                            )
                        )
        return recs, total

    def _fit_matches(self, recs: list[query_models.SpanMatchRecord], total: int) -> tuple[list[query_models.SpanMatchRecord], str]:
        kept = take_within(recs, self.budget - 800)
        if len(kept) < len(recs):
            ids = list(dict.fromkeys(r.span_id for r in recs[len(kept) :]))
            return kept, (
                f"returned {len(kept)} of {total} matches to stay within {self.budget:,} bytes; "
                "use a more specific pattern, a smaller context_buffer_chars, or search_span on: "
                + ", ".join(ids[:20])
            )
        if total > len(kept):
            return kept, f"{total - len(kept)} more matches not returned (max_matches)"
        return kept, ""

    def render_trace(self, trace_id: str, budget: int | None = None) -> query_models.RenderedTrace:
        """The span tree as compact indented text, cut to the byte budget with a pointer to the rest."""
        spans = self.spans(trace_id)
        text, cut = render(trace_id, spans, min(budget or self.budget, self.budget) - 200)
        return query_models.RenderedTrace(trace_id=trace_id, text=text, truncated=cut)

    def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """Run tool ``name`` (see ``query_models.TOOLS``) with JSON arguments validated by its model."""
        spec = query_models.TOOLS[name]
        args = spec.arguments.model_validate(arguments)
        fields = {k: getattr(args, k) for k in type(args).model_fields}
        return getattr(self, name)(**fields)

    # ------------------------------------------------------------------ reports
    def report(self) -> dict[str, Any]:
        """What ``halo index --json`` prints: totals, per-file counts, skipped and repaired by reason."""
        return {
            "spans": self.span_count,
            "traces": len(self._tids),
            "error_spans": sum(sum(idx.state.cols[canonical_reader.ERR]) for idx in self.indexes),
            "files": [f.to_dict() for f in self.files],
            "skipped_lines": dict(sorted(self.problems.skipped.items())),
            "repaired": dict(sorted(self.problems.repaired.items())),
            "examples": list(self.problems.examples),
        }


# ---------------------------------------------------------------------- helpers


def _looks_canonical(d: Any) -> bool:
    """Cheap read-time shape check; anything else goes through ``canonicalize_record``."""
    if type(d) is not dict:
        return False
    for k in _CANON_KEYS:
        if k not in d:
            return False
    return type(d["resource"]) is dict and type(d["scope"]) is dict


def _mask(idx: TraceIndex, names: list[str]) -> int:
    m = 0
    for n in names:
        m |= idx.state.vbit.get(n, 0)
    return m


def _bits(idx: TraceIndex, mask: int) -> list[str]:
    vocab = idx.state.vocab
    out = []
    i = 0
    while mask:
        if mask & 1:
            out.append(vocab[i])
        mask >>= 1
        i += 1
    return out


def _names(rows: list[tuple[TraceIndex, list[Any]]], slot: int) -> list[str]:
    out: set[str] = set()
    for idx, r in rows:
        if r[slot]:
            out.update(_bits(idx, r[slot]))
    return sorted(out)


def _time_arg(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    ns = to_ns(value)
    if ns is None:
        raise ValueError(f"{name}={value!r} is not a timestamp (use ISO-8601, e.g. 2025-06-01T00:00:00Z)")
    return ns
