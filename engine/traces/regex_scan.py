"""Regex filters without re-reading the dataset span by span.

halo-engine seeks and decodes every candidate span for a regex filter. Here the compiled
*bytes* pattern runs once over an mmap of the whole file (C speed, no per-span Python
work); each match offset is mapped to its span by bisecting the index's offset array, and
the scan jumps to the end of that span. Patterns are guarded: length-limited, compile
errors become one clear message, nested quantifiers (the classic catastrophic backtracking
shape, e.g. ``(a+)+``) are refused up front, and every search runs under a deadline when the
``regex`` module is installed (it takes a ``timeout``; Python's ``re`` cannot be interrupted,
so without it repeats over alternations like ``(a|a)*`` are refused too).
"""

from __future__ import annotations

import functools
import mmap
import os
import re
import sys
import time
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from typing import Any

from engine.traces.content_index import PRUNE_SHARE, ContentIndex, literal_query
from engine.traces.parallel import line_end

MAX_PATTERN_CHARS = 2000
SCAN_SECONDS = 60.0  # per query (a whole-file count included); patterns that run longer are refused
TIMEOUT = "the regex ran past its time limit ({:.0f} s); use a more specific pattern or narrow the filters first"

try:  # optional: same syntax as ``re`` (V0), but searches accept a timeout
    import regex as _regex_mod
except ImportError:  # pragma: no cover - depends on the environment
    _regex_mod = None

try:  # private but stable since 3.11 (and sre_parse before it); the guard degrades to "off" without it
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _sre_parse = None


class RegexError(ValueError):
    """A pattern we refuse: invalid, too long, or catastrophic. The message says why."""


def _nested_repeat(tree: Any, inside: bool = False) -> bool:
    """True when a repeat with max > 1 contains another repeat with max > 1."""
    for op, av in tree:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, sub = av
            many = hi is None or hi > 1 or str(hi) == "MAXREPEAT"
            if many and inside:
                return True
            if _nested_repeat(sub, inside or many):
                return True
        elif name == "SUBPATTERN":
            if _nested_repeat(av[-1], inside):
                return True
        elif name == "BRANCH":
            if any(_nested_repeat(b, inside) for b in av[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT"):
            if _nested_repeat(av[1], inside):
                return True
    return False


def _longest_run(seq: Any) -> tuple[bytes | None, bool]:
    """Longest run of consecutive literal characters in a parsed sequence; ``exact`` when that is all it is."""
    best: list[int] = []
    run: list[int] = []
    exact = True
    for op, av in seq:
        if str(op) == "LITERAL":
            run.append(av)
            continue
        exact = False
        if len(run) > len(best):
            best = run
        run = []
    if len(run) > len(best):
        best = run
    if len(best) < 3 or any(c >= 128 or c == 10 for c in best):
        return None, False
    return bytes(best), exact and len(best) == len(seq)


def required_literals(pattern: str) -> tuple[list[bytes] | None, bool]:
    """``(literals, exact)``: every match contains one of ``literals`` (so memchr-speed ``find`` can
    locate candidate spans); ``exact`` when the pattern is nothing but those literals.

    Handles a plain sequence (its longest literal run) and a top-level alternation whose every
    branch has one (``TimeoutError|PermissionError``). Case-insensitive or non-ASCII: none.
    """
    if _sre_parse is None or not pattern.isascii():
        return None, False
    try:
        tree = _sre_parse.parse(pattern, re.MULTILINE)
    except Exception:  # noqa: BLE001
        return None, False
    if tree.state.flags & re.IGNORECASE:
        return None, False
    items = list(tree)
    if len(items) == 1 and str(items[0][0]) == "BRANCH":
        lits, exact = [], True
        for branch in items[0][1][1]:
            lit, ex = _longest_run(list(branch))
            if lit is None:
                return None, False
            lits.append(lit)
            exact = exact and ex
        return lits, exact
    lit, exact = _longest_run(items)
    return ([lit], exact) if lit is not None else (None, False)


def _repeated_branch(tree: Any, inside: bool = False) -> bool:
    """True when a repeat with max > 1 contains an alternation (``(a|a)*``: exponential in ``re``)."""
    for op, av in tree:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, sub = av
            many = hi is None or hi > 1 or str(hi) == "MAXREPEAT"
            if _repeated_branch(sub, inside or many):
                return True
        elif name == "BRANCH":
            if inside or any(_repeated_branch(b, inside) for b in av[1]):
                return True
        elif name == "SUBPATTERN":
            if _repeated_branch(av[-1], inside):
                return True
        elif name in ("ASSERT", "ASSERT_NOT"):
            if _repeated_branch(av[1], inside):
                return True
    return False


class Timed:
    """A compiled pattern whose searches give up at a deadline (with the ``regex`` module)."""

    __slots__ = ("rx", "deadline", "pattern", "seconds", "_ascii")

    def __init__(self, rx: Any, deadline: float, seconds: float) -> None:
        self.rx = rx
        self.deadline = deadline
        self.seconds = seconds
        self.pattern = rx.pattern
        self._ascii: Any = False

    def _left(self) -> float:
        """Wall seconds left, checked before every search. Within one search the ``regex`` module counts
        the limit in CPU time, so on a loaded machine a single search may run past the wall deadline by
        the load factor; the next check then stops the query."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RegexError(TIMEOUT.format(self.seconds))
        return left

    def search(self, buf: Any, pos: int = 0, endpos: int = sys.maxsize) -> Any:
        if _regex_mod is None or not isinstance(self.rx, _regex_mod.Pattern):
            return self.rx.search(buf, pos, endpos)
        try:
            return self.rx.search(buf, pos, endpos, timeout=self._left())
        except TimeoutError:
            raise RegexError(TIMEOUT.format(self.seconds)) from None

    def finditer(self, text: Any) -> Iterator[Any]:
        if _regex_mod is None or not isinstance(self.rx, _regex_mod.Pattern):
            yield from self.rx.finditer(text)
            return
        try:
            yield from self.rx.finditer(text, timeout=self._left())
        except TimeoutError:
            raise RegexError(TIMEOUT.format(self.seconds)) from None

    def ascii_twin(self) -> Timed | None:
        """The bytes twin for ASCII haystacks (see ``_ascii_twin``), sharing this deadline."""
        if self._ascii is False:
            twin = _ascii_twin(self.pattern) if isinstance(self.pattern, str) else None
            self._ascii = Timed(twin, self.deadline, self.seconds) if twin is not None else None
        return self._ascii


def _exec_compile(pattern: str | bytes) -> Any:
    """The object searches run on: ``regex`` (V0 = ``re`` semantics, interruptible) when available."""
    if _regex_mod is not None:
        try:
            return _regex_mod.compile(pattern, _regex_mod.V0 | _regex_mod.MULTILINE)
        except Exception:  # noqa: BLE001 - fall back to re, which already accepted the pattern
            pass
    return re.compile(pattern, re.MULTILINE)


def compile_guarded(pattern: str, seconds: float | None = None) -> tuple[Timed | None, Timed]:
    """``(bytes_pattern or None, str_pattern)``; raises ``RegexError`` with a clear message.

    The bytes form is used when the pattern means the same on UTF-8 bytes (ASCII only and no
    ``\\w``-style classes, whose meaning differs); otherwise callers match decoded text.
    """
    if not isinstance(pattern, str) or not pattern:
        raise RegexError("regex_pattern must be a non-empty string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RegexError(f"regex_pattern is {len(pattern)} chars; the limit is {MAX_PATTERN_CHARS}")
    try:
        re.compile(pattern, re.MULTILINE)  # validation and error messages: re is what halo-engine runs
    except re.error as exc:
        raise RegexError(f"invalid regex {pattern!r}: {exc}") from exc
    if _sre_parse is not None:
        try:
            tree = _sre_parse.parse(pattern, re.MULTILINE)
        except Exception:  # noqa: BLE001 - the guard must never be what fails
            tree = None
        if tree is not None and _nested_repeat(tree):
            raise RegexError(
                f"regex {pattern!r} nests a repeat inside a repeat (like (a+)+), which can take "
                "exponential time; rewrite it without a quantified group that contains a quantifier"
            )
        if tree is not None and _regex_mod is None and _repeated_branch(tree):
            raise RegexError(
                f"regex {pattern!r} repeats an alternation (like (a|b)*), which can take exponential "
                "time here; search for the alternatives without the repeat"
            )
    seconds = SCAN_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    bytes_rx = None
    if pattern.isascii() and not re.search(r"\\[wWbBdDsS]", pattern) and "(?i" not in pattern:
        try:
            re.compile(pattern.encode(), re.MULTILINE)
            bytes_rx = Timed(_exec_compile(pattern.encode()), deadline, seconds)
        except re.error:
            bytes_rx = None
    return bytes_rx, Timed(_exec_compile(pattern), deadline, seconds)


@functools.lru_cache(maxsize=64)
def _ascii_twin(pattern: str) -> Any:
    """A bytes version of an ASCII pattern, valid on ASCII haystacks only: there ``\\d``, ``\\w``,
    ``\\s`` (on JSON, which escapes control characters), ``\\b`` and ``(?i)`` mean what they mean on str."""
    if not pattern.isascii():
        return None
    try:
        re.compile(pattern.encode(), re.MULTILINE)
    except re.error:
        return None
    return _exec_compile(pattern.encode())


def span_matches(raw: bytes, bytes_rx: Timed | None, text_rx: Timed) -> bool:
    """Does one span's raw line (newline stripped) match?"""
    if bytes_rx is not None:
        return bytes_rx.search(raw) is not None
    if raw.isascii():
        twin = text_rx.ascii_twin()
        if twin is not None:
            return twin.search(raw) is not None
    return text_rx.search(raw.decode("utf-8", errors="replace")) is not None


def matching_spans(
    path: str,
    off: Any,
    ln: Any,
    bytes_rx: Timed | None,
    text_rx: Timed,
    candidates: Iterable[int] | None = None,
    deadline: float | None = None,
    content: ContentIndex | None = None,
) -> set[int]:
    """Span numbers (into ``off``/``ln``) whose line matches.

    With no ``candidates`` (or many), one pass over an mmap of the file; with a small
    candidate set, only those spans are read. A ``content`` index rules out spans whose line
    cannot hold the pattern's required literals; the rest are read in runs and scanned exactly
    as the whole-file pass would (same functions, same line context).
    """
    deadline = deadline or text_rx.deadline
    hits: set[int] = set()
    possible = _content_candidates(content, text_rx.pattern, off, ln)
    if candidates is not None and possible is not None:
        candidates = sorted(set(candidates).intersection(possible.tolist()))
    if candidates is None and possible is not None and len(possible) <= len(off) * PRUNE_SHARE:
        lits, exact = required_literals(text_rx.pattern)
        _scan_runs(path, off, ln, possible, lits, exact, bytes_rx, text_rx, hits, deadline)
        return hits
    if candidates is not None:
        cand = sorted(candidates)
        with open(path, "rb") as fh:
            for i in cand:
                fh.seek(off[i])
                if span_matches(fh.read(ln[i]).rstrip(b"\r\n"), bytes_rx, text_rx):
                    hits.add(i)
                if time.monotonic() > deadline:
                    raise RegexError(TIMEOUT.format(text_rx.seconds))
        return hits
    if len(off) == 0:
        return hits
    lits, exact = required_literals(text_rx.pattern)
    with open(path, "rb") as fh:
        for buf, base, lo, hi in _windows(fh):
            try:
                _scan_window(buf, base, lo, hi, lits, exact, bytes_rx, text_rx, off, ln, hits)
            finally:
                buf.close()
            if time.monotonic() > deadline:
                raise RegexError(TIMEOUT.format(text_rx.seconds))
    return hits


WINDOW = 128 * 1024 * 1024  # mmap this much at a time: RSS stays bounded on multi-GB files
RUN_BYTES = 16 * 1024 * 1024  # the most bytes read at once for a run of candidate spans
RUN_JOIN = 8  # candidate spans this few numbers apart are read together (fewer reads, a few more bytes)


def _content_candidates(content: ContentIndex | None, pattern: Any, off: Any, ln: Any) -> Any:
    """Span numbers whose line may match (numpy array), or None when the content index cannot tell."""
    if content is None or not isinstance(pattern, str):
        return None
    query = literal_query(pattern)
    if query is None:
        return None
    return content.candidate_spans(off, ln, query)


def _runs(spans: Any, off: Any, ln: Any) -> Iterator[tuple[int, int]]:
    """``(first, last)`` span numbers of each run to read: candidates at most ``RUN_JOIN`` apart are
    joined (numpy finds the breaks), runs are cut at ``RUN_BYTES``."""
    import numpy as np

    breaks = np.flatnonzero(np.diff(spans) > RUN_JOIN)
    firsts = np.concatenate(([spans[0]], spans[breaks + 1])).tolist()
    lasts = np.concatenate((spans[breaks], [spans[-1]])).tolist()
    for first, last in zip(firsts, lasts, strict=True):
        while off[last] + ln[last] - off[first] > RUN_BYTES and first < last:  # rare: a long run in pieces
            cut = max(first, bisect_right(off, off[first] + RUN_BYTES) - 2)
            yield first, cut
            first = cut + 1
        yield first, last


def _scan_runs(
    path: str,
    off: Any,
    ln: Any,
    spans: Any,
    lits: list[bytes] | None,
    exact: bool,
    bytes_rx: Timed | None,
    text_rx: Timed,
    hits: set[int],
    deadline: float,
) -> None:
    """The whole-file scan restricted to runs of candidate spans: each run is read with the byte
    before it (the previous line's newline, which ``^`` and ``\\b`` look at) and handed to the
    function the whole-file pass would use. ``literal_query`` only lets through patterns whose
    matches stay inside one line, so what lies between the runs cannot change a verdict."""
    if len(spans) == 0:
        return
    with open(path, "rb") as fh:
        fd = fh.fileno()
        for first, last in _runs(spans, off, ln):
            ctx = 1 if off[first] > 0 else 0
            base = off[first] - ctx
            buf = os.pread(fd, off[last] + ln[last] - base, base)
            _scan_window(buf, base, ctx, len(buf), lits, exact, bytes_rx, text_rx, off, ln, hits)
            if time.monotonic() > deadline:
                raise RegexError(TIMEOUT.format(text_rx.seconds))


def _windows(fh: Any) -> Any:
    """Yield ``(mmap, base, lo, hi)``: the map covers file bytes ``[base, base + len)``; scan ``[lo, hi)``,
    which starts and ends on line boundaries so no line is split between windows."""
    size = os.fstat(fh.fileno()).st_size
    start = 0  # first byte of the next unscanned line
    gran = mmap.ALLOCATIONGRANULARITY
    while start < size:
        base = start - start % gran
        length = min(size - base, WINDOW)
        mm = mmap.mmap(fh.fileno(), length, offset=base, access=mmap.ACCESS_READ)
        if hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_SEQUENTIAL)
        hi = length
        if base + length < size:
            nl = mm.rfind(b"\n", start - base)
            if nl < 0:  # one line longer than the window: map it whole
                mm.close()
                end = line_end(fh, start, size)
                mm = mmap.mmap(fh.fileno(), end - base, offset=base, access=mmap.ACCESS_READ)
                hi = end - base
            else:
                hi = nl + 1
        yield mm, base, start - base, hi
        start = base + hi


def _scan_window(buf: Any, base: int, lo: int, hi: int, lits: Any, exact: bool, bytes_rx: Any, text_rx: Timed,
                 off: Any, ln: Any, hits: set[int]) -> None:
    """Scan ``buf[lo:hi]`` (file offset ``base``) the fastest way the pattern allows: by its required
    literals, as bytes, or as text. The whole-file pass and the candidate runs both come here."""
    if lits is not None:
        _scan_literals(buf, base, lo, hi, lits, exact, bytes_rx, text_rx, off, ln, hits)
    elif bytes_rx is not None:
        _scan(buf, base, lo, hi, bytes_rx.search, off, ln, hits)
    else:
        _scan_text(buf, base, lo, hi, text_rx, off, ln, hits)


def _scan_text(buf: Any, base: int, lo: int, hi: int, text_rx: Any, off: Any, ln: Any, hits: set[int]) -> None:
    """str semantics (\\w, \\d, case folding): an ASCII window is decoded once (char offsets ==
    byte offsets); windows with non-ASCII bytes are matched span by span."""
    data = buf[lo:hi]
    if data.isascii():
        twin = text_rx.ascii_twin()
        if twin is not None:
            _scan(data, base + lo, 0, len(data), twin.search, off, ln, hits)
        else:
            _scan(data.decode("ascii"), base + lo, 0, len(data), text_rx.search, off, ln, hits)
        return
    first, last = bisect_right(off, base + lo - 1), bisect_right(off, base + hi - 1)
    for i in range(first, last):
        a = off[i] - base
        raw = bytes(buf[a : a + ln[i]]).rstrip(b"\r\n")
        if text_rx.search(raw.decode("utf-8", errors="replace")):
            hits.add(i)


def _scan(buf: Any, base: int, lo: int, hi: int, search: Any, off: Any, ln: Any, hits: set[int]) -> None:
    """Run ``search`` over ``buf[lo:hi]`` (file offset = base + index); add each match's span, skip past it."""
    n = len(off)
    nl = b"\n" if not isinstance(buf, str) else "\n"
    pos = lo
    while pos < hi:
        m = search(buf, pos, hi)
        if m is None:
            return
        s = m.start()
        if s >= hi:
            return
        i = bisect_right(off, base + s) - 1
        if i < 0 or base + s >= off[i] + ln[i]:  # inside a line that is not a kept span: next line
            k = buf.find(nl, s, hi)
            pos = hi if k < 0 else k + 1
            continue
        a, end = off[i] - base, off[i] + ln[i] - base
        if m.end() <= end or search(buf[a:end].rstrip()) is not None:
            hits.add(i)
        pos = (off[i + 1] - base) if i + 1 < n else hi


def _scan_literals(
    buf: Any,
    base: int,
    lo: int,
    hi: int,
    lits: list[bytes],
    exact: bool,
    bytes_rx: Timed | None,
    text_rx: Timed,
    off: Any,
    ln: Any,
    hits: set[int],
) -> None:
    """``find`` each required literal (memchr speed) to collect candidate spans, then confirm the
    pattern on those spans only (not needed when the pattern is just the literals)."""
    find = buf.find
    n = len(off)
    cands: set[int] = set()
    for lit in lits:
        pos = lo
        while pos < hi:
            s = find(lit, pos, hi)
            if s < 0:
                break
            i = bisect_right(off, base + s) - 1
            if i < 0 or base + s >= off[i] + ln[i]:  # inside a line that is not a kept span
                k = find(b"\n", s, hi)
                pos = hi if k < 0 else k + 1
                continue
            cands.add(i)
            pos = (off[i + 1] - base) if i + 1 < n else hi
    for i in cands - hits:
        a = off[i] - base
        if exact or span_matches(bytes(buf[a : a + ln[i]]).rstrip(b"\r\n"), bytes_rx, text_rx):
            hits.add(i)
