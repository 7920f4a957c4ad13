"""The index's hot loop: one streaming pass over canonical JSONL, a typed partial decode per line, compact arrays out.

Why it looks the way it does: building the index must cost little more than parsing
each line once. So each line is decoded into ``index_projection.SpanView`` (msgspec: only the
dozen fields the index reads, every other value skipped unallocated) and per span we do only
``index_projection.rollup_of`` (``normalize.rollup`` unrolled over the Struct), two
``int(hex, 16)`` and a handful of list/array updates; no per-span dicts, no pydantic.
Timestamps already in the canonical fixed-width form (``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``,
30 chars) order exactly like the epoch nanoseconds they denote, so they are compared as-is and
turned into ints once per trace. A line that does not fit the types or the checks takes the
previous orjson path (``_dict_line``: ``orjson.loads`` + ``normalize.rollup``, same checks), and
what that cannot take (wrong types, odd ids, clock skew, bad UTF-8...) goes through
``formats.canonical.canonicalize_record``, the same coercion every reader uses, and is
remembered so readers re-apply it. Both fast paths accept exactly the same lines.
"""

from __future__ import annotations

import calendar
import io
import os
import sys
import time
from array import array
from datetime import date
from itertools import repeat
from typing import Any

import orjson

from engine.traces import conventions, index_projection
from engine.traces.formats.canonical import canonicalize_record
from engine.traces.normalize import CATEGORIES, rollup
from engine.traces.problems import Problems
from engine.traces.span import STATUS_ERROR, STATUS_OK, STATUS_UNSET, iso_to_ns

# Per-trace rollup fields: one Python list per field ("columns"), indexed by trace number, so the
# cache stores and loads each field with one C-level call instead of transposing rows.
N, ERR, TIN, TOUT, START, END, BYTES, M_MODEL, M_AGENT, M_SERVICE, M_TOOL, NODEID, OUTCOME = range(13)
CAT0 = 13
CAT_SLOT = {c: CAT0 + i for i, c in enumerate(CATEGORIES)}
ORPHANS = CAT0 + len(CATEGORIES)
CYCLES = ORPHANS + 1
START_NS = CYCLES + 1
END_NS = START_NS + 1
ROW_LEN = END_NS + 1
FACET_SLOTS = {"model": M_MODEL, "agent": M_AGENT, "service": M_SERVICE, "tool": M_TOOL}

_HEX = frozenset("0123456789abcdef")
KINDS = frozenset(
    f"SPAN_KIND_{k}" for k in ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
)
CODES = frozenset((STATUS_UNSET, STATUS_OK, STATUS_ERROR))
_OUTCOME_RANK = {"error": 5, "failed": 4, "xfailed": 2, "xpassed": 2, "passed": 1, "skipped": 0}

# ``Problems`` reasons this module owns (the others come from ``canonicalize_record``).
BUFFER = 1 << 20  # bigger reads than the default 8 KB: fewer syscalls on GB-sized files
MALFORMED = "malformed_json"
TRUNCATED = "truncated_line"
SELF_PARENT = "parent_cycle"


def new_row() -> list[Any]:
    """An empty per-trace rollup; START/END hold canonical time strings (compared as-is while scanning)."""
    row: list[Any] = [0] * ROW_LEN
    row[START] = "~"  # sorts after any digit: the first real start replaces it
    row[END] = ""
    row[NODEID] = None
    row[OUTCOME] = None
    return row


_DEFAULTS = new_row()
_MINUTE_CACHE: dict[str, int] = {}


_EPOCH_DAY = date(1970, 1, 1).toordinal()


def minute_epoch(m: str) -> int:
    """``YYYY-MM-DDTHH:MM`` (UTC) → epoch seconds, as ``timegm(strptime(m, "%Y-%m-%dT%H:%M"))`` gives.

    The plain ASCII-digit spelling is computed directly (strptime costs ~50 µs, once per new
    minute); anything else, or a value out of range, goes to strptime for its exact verdict.
    """
    if (
        len(m) == 16
        and m.isascii()
        and m[4] == m[7] == "-"
        and m[10] == "T"
        and m[13] == ":"
        and (m[:4] + m[5:7] + m[8:10] + m[11:13] + m[14:]).isdigit()
    ):
        h, mi = int(m[11:13]), int(m[14:])
        if h < 24 and mi < 60:
            try:
                day = date(int(m[:4]), int(m[5:7]), int(m[8:10])).toordinal()
            except ValueError:
                pass
            else:
                return (day - _EPOCH_DAY) * 86400 + h * 3600 + mi * 60
    return calendar.timegm(time.strptime(m, "%Y-%m-%dT%H:%M"))


def canon_ns(s: str) -> int | None:
    """Canonical 30-char ``...Z`` time → epoch ns (cached per minute); anything else → ``iso_to_ns``."""
    if len(s) == 30 and s[29] == "Z" and s[19] == ".":
        base = _MINUTE_CACHE.get(s[:16])
        if base is None:
            try:
                base = minute_epoch(s[:16])
            except ValueError:
                return iso_to_ns(s)
            if len(_MINUTE_CACHE) > 100_000:
                _MINUTE_CACHE.clear()
            _MINUTE_CACHE[s[:16]] = base
        try:
            return (base + int(s[17:19])) * 1_000_000_000 + int(s[20:29])
        except ValueError:
            return iso_to_ns(s)
    return iso_to_ns(s)


def finish_row(cols: list[list[Any]], t: int) -> None:
    """Turn trace ``t``'s min/max time strings into int ns (once per trace, not per span)."""
    s = canon_ns(cols[START][t]) if cols[START][t] != "~" else None
    e = canon_ns(cols[END][t]) if cols[END][t] else None
    cols[START_NS][t] = s or 0
    cols[END_NS][t] = max(e or 0, s or 0)


class ScanState:
    """Everything one file's scan accumulates: span arrays in file order, traces, rows, vocabulary."""

    def __init__(self) -> None:
        self.off = array("q")  # byte offset of each kept span's line
        self.ln = array("i")  # its length in bytes (newline included)
        self.tr = array("i")  # its trace number
        self.sid = array("Q")  # span id as a 64-bit int
        self.pid = array("Q")  # parent span id as an int (0 = root)
        self.slow: set[int] = set()  # span numbers whose line needed coercion: readers re-apply it
        self.gaps = array("q")  # offsets of lines that are not kept spans (blank, skipped, duplicate)
        self.tids: list[str] = []
        self.tmap: dict[str, int] = {}
        self.cols: list[list[Any]] = [[] for _ in range(ROW_LEN)]  # per field: one value per trace
        self.tspans: list[array] = []  # per trace: its span numbers in file order
        self.vocab: list[str] = []
        self.vbit: dict[str, int] = {}

    def bit(self, value: str) -> int:
        """The facet bit of a string (models, agents, services, tools share one vocabulary)."""
        b = self.vbit.get(value)
        if b is None:
            b = 1 << len(self.vocab)
            self.vocab.append(value)
            self.vbit[value] = b
        return b

    def new_trace(self, tid: str) -> int:
        """A new trace number. Columns grow by blocks of default rows (``trim`` drops the unused ones)."""
        ti = len(self.tids)
        self.tids.append(tid)
        self.tmap[tid] = ti
        if len(self.cols[0]) <= ti:
            grow = max(1024, ti // 4)
            for col, default in zip(self.cols, _DEFAULTS, strict=True):
                col.extend(repeat(default, ti + grow - len(col)))
        self.tspans.append(array("i"))
        return ti

    def trim(self) -> None:
        """Drop the default rows ``new_trace`` added ahead: every column has one value per trace again."""
        n = len(self.tids)
        for col in self.cols:
            del col[n:]

    def row(self, t: int) -> list[Any]:
        """Trace ``t``'s rollup as one list (``row[N]``, ``row[ERR]``...); for reports, not hot loops."""
        return [col[t] for col in self.cols]

    def set_row(self, t: int, row: list[Any]) -> None:
        for col, v in zip(self.cols, row, strict=True):
            col[t] = v


def span_facts(d: Any) -> tuple[Any, ...] | str:
    """Slow path: coerce one parsed line; the facts tuple the fold needs, or a skip reason.

    Returns ``(tid, sid_int, pid_int, start, end, rollup..., service, nodeid, outcome, repairs)``.
    """
    span, reason, repairs = canonicalize_record(d)
    if span is None:
        return reason
    sk = int(span["span_id"], 16)
    p = span["parent_span_id"]
    pk = int(p, 16) if p else 0
    if pk == sk:
        pk = 0
        repairs.append(SELF_PARENT)
    cat, model, tin, tout, tool, agent, err = rollup(span)
    svc = span["resource"]["attributes"].get("service.name")
    attrs = span["attributes"]
    nid = attrs.get(conventions.TEST_NODEID)
    out = attrs.get(conventions.TEST_OUTCOME)
    return (
        span["trace_id"],
        sk,
        pk,
        span["start_time"],
        span["end_time"],
        cat,
        model,
        tin,
        tout,
        tool,
        agent,
        err,
        svc if isinstance(svc, str) else None,
        nid if isinstance(nid, str) else None,
        out if isinstance(out, str) else None,
        repairs,
    )


def fast_facts(d: Any) -> tuple[Any, ...] | None:
    """The hot loop's fast-path extraction as a function, for re-reads; None when the slow path is needed."""
    try:
        tid, sid = d["trace_id"], d["span_id"]
        if len(tid) != 32 or len(sid) != 16 or not _HEX.issuperset(tid):
            return None
        k = int(sid, 16)
        p = d["parent_span_id"]
        if p and len(p) != 16:
            return None
        pk = int(p, 16) if p else 0
        st, et = d["start_time"], d["end_time"]
        if len(st) != 30 or len(et) != 30 or et < st or pk == k or k < 0 or pk < 0 or st[29] != "Z":
            return None
        if d["name"].__class__ is not str or d["kind"] not in KINDS or d["status"]["code"] not in CODES:
            return None
        cat, model, tin, tout, tool, agent, err = rollup(d)
        svc = d["resource"]["attributes"].get("service.name")
        attrs = d["attributes"]
        nid, out = attrs.get(conventions.TEST_NODEID), attrs.get(conventions.TEST_OUTCOME)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None
    return (
        tid, k, pk, st, et, cat, model, tin, tout, tool, agent, err,
        svc if svc.__class__ is str else None,
        nid if isinstance(nid, str) else None,
        out if isinstance(out, str) else None,
        [],
    )  # fmt: skip


def fold(state: ScanState, row: list[Any], facts: tuple[Any, ...], nbytes: int) -> None:
    """Add one span's facts to a trace row (the slow-path twin of the inlined hot-loop fold)."""
    _, _, _, st, et, cat, model, tin, tout, tool, agent, err, svc, nid, out, _ = facts
    row[N] += 1
    row[BYTES] += nbytes
    if st < row[START]:
        row[START] = st
    if et > row[END]:
        row[END] = et
    row[CAT_SLOT.get(cat, CAT_SLOT["other"])] += 1
    if err:
        row[ERR] += 1
    if tin:
        row[TIN] += tin
    if tout:
        row[TOUT] += tout
    if model:
        row[M_MODEL] |= state.bit(model)
    if agent:
        row[M_AGENT] |= state.bit(agent)
    if svc:
        row[M_SERVICE] |= state.bit(svc)
    if tool:
        row[M_TOOL] |= state.bit(tool)
    if nid:
        fold_test(row, nid, out)


def fold_test(row: list[Any], nid: Any, out: Any) -> None:
    """Record the test a trace belongs to; the most severe outcome wins (error > failed > passed)."""
    if isinstance(nid, str) and row[NODEID] is None:
        row[NODEID] = nid
    if isinstance(out, str) and _OUTCOME_RANK.get(out, -1) >= _OUTCOME_RANK.get(row[OUTCOME], -2):
        row[OUTCOME] = out


def _bad_line(line: bytes, at_eof: bool) -> tuple[Any, str]:
    """A line orjson refused: ``(parsed, "")`` after replacing invalid UTF-8, else ``(None, reason)``."""
    if at_eof and not line.endswith(b"\n"):
        return None, TRUNCATED
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return orjson.loads(line.decode("utf-8", errors="replace")), "invalid_utf8"
        except orjson.JSONDecodeError:
            return None, MALFORMED
    return None, MALFORMED


class _Range(io.RawIOBase):
    """File bytes ``[start, stop)`` as a raw stream (a parallel worker's part, read with ``pread``)."""

    def __init__(self, path: str, start: int, stop: int) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._pos = start
        self._stop = stop

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), self._stop - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._pos)
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def open_part(path: str, start: int, stop: int | None) -> Any:
    """``path`` opened for reading lines from ``start`` (to ``stop`` when given, else to EOF)."""
    if stop is None:
        fh = open(path, "rb", buffering=BUFFER)
        fh.seek(start)
        return fh
    return io.BufferedReader(_Range(path, start, stop), BUFFER)


def scan(
    path: str,
    state: ScanState,
    problems: Problems,
    start: int = 0,
    lineno: int = 0,
    label: str = "",
    stop: int | None = None,
) -> tuple[int, int]:
    """Scan ``path`` from byte ``start`` (line ``lineno`` already read) to EOF, or to byte ``stop`` (a line
    boundary: a parallel worker's part); returns ``(end, lineno)``.

    Never raises for bad data: every unusable line is counted in ``problems`` by reason.
    Consecutive spans of one trace (a *run*) are summed in local variables and added to the
    trace's columns when the run ends (``_flush``): per span only locals change.
    """
    label = label or path
    decode, ascii_, fast_errors = index_projection.decode, bytes.isascii, (*index_projection.DECODE_ERRORS, OverflowError)
    rollup_of, valid_utf8 = index_projection.rollup_of, index_projection.valid_utf8
    decode_primary, quick_rollup = index_projection.decode_primary, index_projection.quick_rollup
    off_add, ln_add = state.off.append, state.ln.append
    fromhex, zero8 = bytes.fromhex, bytes(8)
    sbuf, pbuf = bytearray(), bytearray()  # span / parent ids as 8 big-endian bytes, moved to the arrays by _move_ids
    tmap, vbit, bit = state.tmap, state.vbit, state.bit
    c_cat = {c: state.cols[slot] for c, slot in CAT_SLOT.items()}
    hexset = _HEX
    status_error = STATUS_ERROR
    l_model = l_agent = l_svc = l_tool = None  # the previous span's facet values and their bits
    b_model = b_agent = b_svc = b_tool = 0
    # the current run: its trace (-1: none), first span number and sums
    rt, r0, rn, rb, rerr, rtin, rtout, rst, ret = -1, 0, 0, 0, 0, 0, 0, "~", ""
    last_tid = None  # the run's trace id
    rm_model = rm_agent = rm_svc = rm_tool = 0
    pos = start
    nspans = len(state.off)
    v: index_projection.PrimaryView | index_projection.SpanView  # the primary decode, or the full one when it does not settle the rollup
    ti: int | None  # the span's trace number; None: a trace not seen yet (numbered when its run starts)
    with open_part(path, start, stop) as fh:
        for line in fh:
            n = len(line)
            off = pos
            pos += n
            lineno += 1
            try:
                if not (ascii_(line) or valid_utf8(line)):
                    raise ValueError
                v = decode_primary(line)  # lengths of ids and times, kind and status code checked by the Struct
                r = quick_rollup(v.attributes, v.name)
                if r is None:  # the primary keys do not settle the rollup: decode all the keys it may read
                    v = decode(line)
                    r = rollup_of(v.attributes, v.name)
                tid = v.trace_id
                if tid == last_tid:
                    ti = rt
                else:
                    ti = tmap.get(tid)
                    if ti is None and not hexset.issuperset(tid):
                        raise ValueError
                kb = fromhex(v.span_id)  # = int(span_id, 16) for 16 hex digits; any other spelling falls back
                p = v.parent_span_id
                if p:
                    if len(p) != 16:
                        raise ValueError
                    pb = fromhex(p)
                else:
                    pb = zero8
                st = v.start_time
                et = v.end_time
                if len(kb) != 8 or len(pb) != 8 or et < st or pb == kb or st[29] != "Z":
                    raise ValueError
                a = v.attributes
                cat, model, tin, tout, tool, agent = r
                err = v.status.code == status_error
                svc = v.resource.attributes.service_name
                nid = a.halo_test_nodeid
                out = a.halo_test_outcome
            except fast_errors:
                slow, facts = _dict_line(line, state, problems, f"{label}:{lineno}")
                if facts is None:
                    state.gaps.append(off)
                    continue
                if slow:  # coerced by ``canonicalize_record``: readers re-apply it
                    if rt >= 0:
                        _flush(state, rt, r0, rn, rb, rerr, rtin, rtout, rst, ret, rm_model, rm_agent, rm_svc, rm_tool)
                        rt, last_tid = -1, None
                    sbuf += facts[1].to_bytes(8, "big")
                    pbuf += facts[2].to_bytes(8, "big")
                    _add_slow(state, facts, off, n)
                    nspans += 1
                    continue
                ti, tid, k, pk, st, et, cat, model, tin, tout, tool, agent, err, svc, nid, out = facts
                kb, pb = k.to_bytes(8, "big"), pk.to_bytes(8, "big")
            if ti != rt:
                if rt >= 0:
                    _flush(state, rt, r0, rn, rb, rerr, rtin, rtout, rst, ret, rm_model, rm_agent, rm_svc, rm_tool)
                if ti is None:
                    ti = state.new_trace(tid)
                if len(sbuf) > 1 << 20:
                    _move_ids(state, sbuf, pbuf)
                rt, r0, rn, rb, rerr, rtin, rtout, rst, ret = ti, nspans, 0, 0, 0, 0, 0, "~", ""
                rm_model = rm_agent = rm_svc = rm_tool = 0
                last_tid = tid
            # from here on rt is the span's trace number (== ti, and never None)
            off_add(off)
            ln_add(n)
            sbuf += kb
            pbuf += pb
            nspans += 1
            rn += 1
            rb += n
            if st < rst:
                rst = st
            if et > ret:
                ret = et
            c_cat[cat][rt] += 1
            if err:
                rerr += 1
            if tin:
                rtin += tin
            if tout:
                rtout += tout
            if model:
                if model != l_model:
                    l_model, b_model = model, vbit.get(model) or bit(model)
                rm_model |= b_model
            if agent:
                if agent != l_agent:
                    l_agent, b_agent = agent, vbit.get(agent) or bit(agent)
                rm_agent |= b_agent
            if svc and svc.__class__ is str:
                if svc != l_svc:
                    l_svc, b_svc = svc, vbit.get(svc) or bit(svc)
                rm_svc |= b_svc
            if tool:
                if tool != l_tool:
                    l_tool, b_tool = tool, vbit.get(tool) or bit(tool)
                rm_tool |= b_tool
            if nid:
                _fold_test_col(state, rt, nid, out)
    if rt >= 0:
        _flush(state, rt, r0, rn, rb, rerr, rtin, rtout, rst, ret, rm_model, rm_agent, rm_svc, rm_tool)
    _move_ids(state, sbuf, pbuf)
    state.trim()
    return pos, lineno


def _move_ids(state: ScanState, sbuf: bytearray, pbuf: bytearray) -> None:
    """Append the buffered big-endian ids to ``state.sid`` / ``state.pid`` (C-level) and empty the buffers."""
    for arr, buf in ((state.sid, sbuf), (state.pid, pbuf)):
        ids = array("Q")
        ids.frombytes(buf)
        if sys.byteorder == "little":
            ids.byteswap()
        arr.extend(ids)
        del buf[:]


def _flush(
    state: ScanState, t: int, first: int, n: int, nbytes: int, err: int, tin: int, tout: int,
    st: str, et: str, m_model: int, m_agent: int, m_svc: int, m_tool: int,
) -> None:
    """Add a run's sums (spans ``first`` .. ``first + n - 1``, all of trace ``t``) to its columns and span lists."""
    cols = state.cols
    cols[N][t] += n
    cols[BYTES][t] += nbytes
    if st < cols[START][t]:
        cols[START][t] = st
    if et > cols[END][t]:
        cols[END][t] = et
    cols[ERR][t] += err
    cols[TIN][t] += tin
    cols[TOUT][t] += tout
    cols[M_MODEL][t] |= m_model
    cols[M_AGENT][t] |= m_agent
    cols[M_SERVICE][t] |= m_svc
    cols[M_TOOL][t] |= m_tool
    state.tspans[t].extend(range(first, first + n))
    state.tr.extend(array("i", (t,)) * n)


def _fold_test_col(state: ScanState, t: int, nid: Any, out: Any) -> None:
    """``fold_test`` on trace ``t``'s two test columns."""
    row = [None] * ROW_LEN
    row[NODEID], row[OUTCOME] = state.cols[NODEID][t], state.cols[OUTCOME][t]
    fold_test(row, nid, out)
    state.cols[NODEID][t], state.cols[OUTCOME][t] = row[NODEID], row[OUTCOME]


def _dict_line(line: bytes, state: ScanState, problems: Problems, where: str) -> tuple[bool, Any]:
    """The orjson path for a line the typed decode refused: ``(slow, facts)``; facts None = not a span.

    ``slow`` False: the line passed the same checks as the typed path and ``facts`` is
    ``(ti, tid, sid_int, pid_int, start, end, cat, model, tin, tout, tool, agent, err, svc, nid, out)``
    (``ti`` None for a new trace). ``slow`` True: ``facts`` come from ``span_facts`` (coerced).
    """
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError:
        if not line.strip():
            return False, None
        d, why = _bad_line(line, True)
        if d is None:
            problems.skip(why, where)
            return False, None
        problems.repair(why, where)
        return True, _slow(d, problems, where)
    try:
        tid = d["trace_id"]
        sid = d["span_id"]
        ti = state.tmap.get(tid)
        if ti is None and (len(tid) != 32 or not _HEX.issuperset(tid)):
            raise ValueError
        if len(sid) != 16:
            raise ValueError
        k = int(sid, 16)
        p = d["parent_span_id"]
        if p:
            if len(p) != 16:
                raise ValueError
            pk = int(p, 16)
        else:
            pk = 0
        st = d["start_time"]
        et = d["end_time"]
        if len(st) != 30 or len(et) != 30 or et < st or pk == k or st[29] != "Z":
            raise ValueError
        if d["name"].__class__ is not str or d["kind"] not in KINDS or d["status"]["code"] not in CODES:
            raise ValueError
        cat, model, tin, tout, tool, agent, err = rollup(d)
        svc = d["resource"]["attributes"].get("service.name")
        attrs = d["attributes"]
        nid = attrs.get(conventions.TEST_NODEID)
        out = attrs.get(conventions.TEST_OUTCOME) if nid else None
        if k < 0 or pk < 0 or k >= 1 << 64 or pk >= 1 << 64:
            raise OverflowError  # what the span-id array append would raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError):
        return True, _slow(d, problems, where)
    return False, (ti, tid, k, pk, st, et, cat, model, tin, tout, tool, agent, err, svc, nid, out)


def _slow(d: Any, problems: Problems, where: str) -> tuple[Any, ...] | None:
    facts = span_facts(d)
    if isinstance(facts, str):
        problems.skip(facts, where)
        return None
    for r in facts[-1]:
        problems.repair(r, where)
    return facts


def _add_slow(state: ScanState, facts: tuple[Any, ...], off: int, n: int) -> None:
    tid = facts[0]
    ti = state.tmap.get(tid)
    if ti is None:
        ti = state.new_trace(tid)
    i = len(state.off)
    state.off.append(off)
    state.ln.append(n)
    state.tr.append(ti)
    state.tspans[ti].append(i)
    state.slow.add(i)
    row = state.row(ti)
    fold(state, row, facts, n)
    state.set_row(ti, row)
