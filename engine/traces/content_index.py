"""A content index beside the trace index: which blocks of a file can hold a literal, without reading them.

Regex questions ("how many traces mention ``quota exceeded``") would otherwise read every byte of
a multi-GB file. Here the file is cut into fixed blocks of ``BLOCK`` bytes and each block gets a
``2**BITS``-bit filter of the hashed 4-byte grams that *start at a file offset divisible by 4*
(one unaligned ``uint32`` view of the bytes, hashed with numpy: about a sixth of the cost of
parsing the lines once). Every occurrence of a literal of at least ``MIN_LITERAL`` bytes
contains, for its alignment, whole aligned grams; so a block where, for each of the four
alignments, some gram's bit is clear cannot hold an occurrence starting in it. A regex's
required literals (``literal_query``: alternations are ORs, sequences ANDs, anything not
understood adds no requirement) then rule out whole spans, and only the rest are read.

Blocks depend on bytes alone, not on lines or spans, so parts of a file built separately
(``build(path, start, end, sink)`` at ``GROUP_BYTES`` boundaries, e.g. by parallel workers or
an append) concatenate into exactly the single-pass index. On disk, ``GROUP`` blocks form a
group stored bit-sliced (``ROW`` rows of one byte per block), so the filter bits one gram needs
are ``ROW``-strided runs of ``GROUP`` contiguous bytes per group; the last group holds only
the blocks that exist. Every check is a superset test: false positives cost reading, never a
wrong answer.
"""

from __future__ import annotations

import mmap
import os
import re
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # numpy is imported where it is used: importing the store must not cost its import
    import numpy as np


try:  # the parser ``regex_scan`` uses too; without it there is simply no pruning
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _sre_parse = None

BLOCK = 16 * 1024  # bytes of file per block
BITS = 13  # filter bits per block: 2**13 = 1 KiB per 16 KiB of file (6.25 %)
ROW = (1 << BITS) // 8  # filter bytes per block
GROUP = 1024  # blocks per group (16 MiB of file, 1 MiB of index)
GROUP_BYTES = BLOCK * GROUP
GROUP_SIZE = ROW * GROUP  # bytes of index per full group
CHUNK_BLOCKS = 32  # blocks hashed per numpy call (512 KiB: the scratch arrays stay in cache)
WINDOW = 64 * 1024 * 1024  # bytes of the file mapped at a time while building
MIN_LITERAL = 7  # 4-byte grams at offsets divisible by 4: every alignment of a 7-byte literal holds one
MAX_LITERAL = 64  # any piece of a required literal is required: longer ones are cut (stays within 2 blocks)
MAX_ALTERNATIVES = 64
PRUNE_SHARE = 0.6  # above this share of candidate spans, one sequential pass is cheaper than reading runs
_K = 2654435761  # Knuth's multiplicative hash constant
_PAD = 0x0A  # pads the last gram of a file: never part of a literal


def group_size(blocks: int) -> int:
    """Bytes of index for a group of ``blocks`` blocks."""
    return ROW * blocks


def index_bytes(covered: int) -> int:
    """Size of the index of a file's first ``covered`` bytes."""
    return ROW * (-(-covered // BLOCK))


# ---------------------------------------------------------------------------- building


def build(path: str, start: int, end: int, sink: BinaryIO) -> None:
    """Write the groups covering file bytes ``[start, end)`` to ``sink``; ``start`` is a multiple of
    ``GROUP_BYTES``, and ``end`` ends the last group unless it is a multiple of ``GROUP_BYTES``."""
    if start % GROUP_BYTES:
        raise ValueError("content index parts start at a group boundary")
    if end <= start:
        return
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return
        win = _Windows(fh.fileno(), size)
        try:
            _build_mapped(win, size, start, min(end, size), sink)
        finally:
            win.close()


class _Windows:
    """The file mapped ``WINDOW`` bytes at a time: the mapped pages a build touches (which count as
    its resident memory) stay bounded on multi-GB files."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size
        self.mm: Any = None
        self.base = self.len = 0

    def at(self, pos: int, end: int) -> tuple[Any, int]:
        """A map holding file bytes ``[pos, end)`` and the offset of ``pos`` in it."""
        if self.mm is None or pos < self.base or end > self.base + self.len:
            self.close()
            self.base = pos - pos % mmap.ALLOCATIONGRANULARITY
            self.len = min(self.size - self.base, max(WINDOW, end - self.base))
            self.mm = mmap.mmap(self.fd, self.len, offset=self.base, access=mmap.ACCESS_READ)
        return self.mm, pos - self.base

    def close(self) -> None:
        if self.mm is not None:
            self.mm.close()
            self.mm = None


def _build_mapped(win: _Windows, size: int, start: int, end: int, sink: BinaryIO) -> None:
    import numpy as np

    m = 1 << BITS
    per = CHUNK_BLOCKS * BLOCK // 4  # grams per chunk
    rowoff = np.repeat(np.arange(CHUNK_BLOCKS, dtype=np.int64) * m, BLOCK // 4)
    keys = np.empty(per, np.int64)
    flags = np.zeros(CHUNK_BLOCKS * m, np.bool_)
    group = np.zeros((GROUP, ROW), np.uint8)
    filled = 0  # blocks of ``group`` written
    pos = start
    while pos < end:
        grams = min(per, -(-(end - pos) // 4))  # grams starting in [pos, end)
        avail = (size - pos) // 4  # grams whose 4 bytes all lie in the file
        mm, rel = win.at(pos, min(size, pos + 4 * grams))
        if grams <= avail:
            x = np.frombuffer(mm, "<u4", count=grams, offset=rel)
        else:  # the file's last bytes: pad the final gram
            tail = bytes(mm[rel : rel + size - pos]) + bytes((_PAD,)) * 3
            x = np.frombuffer(tail, "<u4", count=grams)
        k = keys[:grams]
        np.multiply(x, np.uint32(_K), out=k, casting="unsafe", dtype=np.uint32)  # wraps at 32 bits, like _hash
        np.right_shift(k, 32 - BITS, out=k)  # the top BITS bits of a 32-bit product: already < 2**BITS
        np.add(k, rowoff[:grams], out=k)
        del x  # the map may be replaced next round: no view of it may outlive this one
        nblocks = -(-grams * 4 // BLOCK)
        flags[: nblocks * m] = False
        flags[k] = True
        rows = np.packbits(flags[: nblocks * m].reshape(nblocks, m), axis=1, bitorder="little")
        while len(rows):
            take = min(len(rows), GROUP - filled)
            group[filled : filled + take] = rows[:take]
            filled += take
            rows = rows[take:]
            if filled == GROUP:
                sink.write(np.ascontiguousarray(group.T).tobytes())
                filled = 0
        pos += grams * 4
    if filled:
        sink.write(np.ascontiguousarray(group[:filled].T).tobytes())


def build_bytes(path: str, end: int) -> bytes:
    """The whole index of a file's first ``end`` bytes, in memory (small files, uncached builds)."""
    import io

    buf = io.BytesIO()
    build(path, 0, end, buf)
    return buf.getvalue()


# ---------------------------------------------------------------------------- querying


def _hash(gram: bytes) -> int:
    return ((int.from_bytes(gram, "little") * _K) & 0xFFFFFFFF) >> (32 - BITS)


class ContentIndex:
    """The filters of a file's first ``covered`` bytes, over ``data`` (bytes, mmap or array)."""

    def __init__(self, data: Any, covered: int) -> None:
        import numpy as np

        self.covered = covered
        self.nblocks = -(-covered // BLOCK)
        raw = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
        if len(raw) != ROW * self.nblocks:
            raise ValueError("content index does not match the indexed bytes")
        self.raw = raw  # the filters as stored (for checks and copies)
        full = self.nblocks // GROUP
        self._full = raw[: full * GROUP_SIZE].reshape(full, ROW, GROUP)
        last = self.nblocks - full * GROUP
        self._last = raw[full * GROUP_SIZE :].reshape(ROW, last) if last else None
        self._bit_cache: dict[int, np.ndarray] = {}

    def _blocks_with(self, h: int) -> np.ndarray:
        """Per block b: is the bit of gram hash ``h`` set in block b or b + 1 (bool array of ``nblocks``)?"""
        import numpy as np

        got = self._bit_cache.get(h)
        if got is not None:
            return got
        col, bit = h >> 3, np.uint8(1 << (h & 7))
        parts = [(self._full[:, col, :] & bit).reshape(-1)]
        if self._last is not None:
            parts.append(self._last[col] & bit)
        col_bits = np.concatenate(parts).astype(np.bool_)
        # an occurrence starting in block b may have its later grams in block b + 1: b passes on either
        out = col_bits.copy()
        out[:-1] |= col_bits[1:]
        if len(self._bit_cache) < 512:
            self._bit_cache[h] = out
        return out

    def literal_blocks(self, lit: bytes) -> np.ndarray | None:
        """Per block: may an occurrence of ``lit`` start in it? None when ``lit`` is too short to tell."""
        import numpy as np

        lit = lit[:MAX_LITERAL]
        if len(lit) < MIN_LITERAL:
            return None
        ok = np.zeros(self.nblocks, np.bool_)
        for r in range(4):  # the occurrence's grams start at lit offsets r, r+4, ... (offset r is aligned)
            here = np.ones(self.nblocks, np.bool_)
            for j in range(r, len(lit) - 3, 4):
                here &= self._blocks_with(_hash(lit[j : j + 4]))
            ok |= here
        return ok

    def spans_may_match(self, off: Any, ln: Any, nums: Any, query: list[list[bytes]]) -> np.ndarray | None:
        """For the span numbers ``nums``: may each one's line hold a match (bool array)? None: cannot tell."""
        import numpy as np

        o = np.frombuffer(off, np.int64) if not isinstance(off, np.ndarray) else off
        lens = np.frombuffer(ln, np.int32) if not isinstance(ln, np.ndarray) else ln
        at = np.asarray(nums, dtype=np.int64)
        return self._may_match(o[at], lens[at], query)

    def candidate_spans(self, off: Any, ln: Any, query: list[list[bytes]]) -> np.ndarray | None:
        """Span numbers (ascending) whose line may hold a match; None when the query prunes nothing.

        ``query`` is ``literal_query``'s: OR over alternatives, each an AND of literals.
        """
        import numpy as np

        o = np.frombuffer(off, np.int64) if not isinstance(off, np.ndarray) else off
        lens = np.frombuffer(ln, np.int32) if not isinstance(ln, np.ndarray) else ln
        ok = self._may_match(o, lens, query)
        return None if ok is None else np.flatnonzero(ok)

    def _may_match(self, o: np.ndarray, lens: np.ndarray, query: list[list[bytes]]) -> np.ndarray | None:
        import numpy as np

        n = len(o)
        if n == 0:
            return np.zeros(0, np.bool_)
        if int((o + lens).max()) > self.covered:
            return None  # spans beyond what the filters describe
        b0 = o // BLOCK
        b1 = (o + lens.astype(np.int64) - 1) // BLOCK
        any_alt = np.zeros(n, np.bool_)
        useful = False
        for alt in query:
            this = np.ones(n, np.bool_)
            for lit in alt:
                blocks = self.literal_blocks(lit)
                if blocks is None:
                    continue
                useful = True
                cs = np.concatenate(([0], np.cumsum(blocks, dtype=np.int64)))
                this &= cs[b1 + 1] > cs[b0]
            any_alt |= this
        if not useful:
            return None
        return any_alt


# ---------------------------------------------------------------------------- required literals

_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
_SAFE_AT = ("AT_BEGINNING", "AT_END", "AT_BOUNDARY", "AT_NON_BOUNDARY")  # ^ $ (multiline) \b \B


class _Unprunable(Exception):
    """The pattern uses something whose match may cross a line or see outside it: no pruning."""


def literal_query(pattern: str) -> list[list[bytes]] | None:
    """What every match of ``pattern`` contains: OR over the alternatives of AND over their literals.

    None when nothing is required (or the pattern is not understood, ignores case, can match a
    newline, or looks around): the caller scans everything. Only ASCII literals of at least
    ``MIN_LITERAL`` bytes are kept (shorter pieces are dropped, which only widens the answer).
    """
    if _sre_parse is None or not isinstance(pattern, str):
        return None
    try:
        tree = _sre_parse.parse(pattern, re.MULTILINE)
    except Exception:  # noqa: BLE001
        return None
    flags = tree.state.flags
    if flags & re.IGNORECASE:
        return None
    try:
        alts = _seq(list(tree), bool(flags & re.DOTALL))
    except _Unprunable:
        return None
    if not alts or any(not a for a in alts):
        return None
    return [sorted(a) for a in alts]


def _seq(items: list[Any], dotall: bool) -> list[frozenset[bytes]]:
    """Alternatives (each a set of literals all present) for a sequence of parsed items."""
    alts: list[frozenset[bytes]] = [frozenset()]
    run: list[int] = []

    def flush() -> None:
        nonlocal alts
        if len(run) >= MIN_LITERAL:
            lit = bytes(run[:MAX_LITERAL])
            alts = [a | {lit} for a in alts]
        run.clear()

    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            if av == 10:
                raise _Unprunable
            if av < 128 and av != 13:
                run.append(av)
                continue
            flush()
            continue
        flush()
        sub: list[frozenset[bytes]] | None = None
        if name == "SUBPATTERN":
            _, add, _, body = av
            if add & re.IGNORECASE:
                _check(list(body), dotall or bool(add & re.DOTALL))
                continue
            sub = _seq(list(body), dotall or bool(add & re.DOTALL))
        elif name == "ATOMIC_GROUP":
            sub = _seq(list(av), dotall)
        elif name == "BRANCH":
            branches = [_seq(list(b), dotall) for b in av[1]]
            if any(not a for br in branches for a in br):  # a branch requiring nothing: the whole requires nothing
                continue
            sub = [a for br in branches for a in br]
        elif name in _REPEATS:
            lo, _, body = av
            inner = _seq(list(body), dotall)
            if lo >= 1:
                sub = inner
        else:
            _check([(op, av)], dotall)
        if sub is not None and len(alts) * len(sub) <= MAX_ALTERNATIVES:
            alts = [a | b for a in alts for b in sub]
    flush()
    return alts


def _check(items: list[Any], dotall: bool) -> None:
    """Raise ``_Unprunable`` when anything here can match a newline, look around or anchor to the string."""
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            if av == 10:
                raise _Unprunable
        elif name == "NOT_LITERAL":
            if av != 10:
                raise _Unprunable
        elif name == "ANY":
            if dotall:
                raise _Unprunable
        elif name == "IN":
            if _class_has_newline(av):
                raise _Unprunable
        elif name == "AT":
            if str(av) not in _SAFE_AT:
                raise _Unprunable
        elif name == "SUBPATTERN":
            _check(list(av[3]), dotall or bool(av[1] & re.DOTALL))
        elif name == "ATOMIC_GROUP":
            _check(list(av), dotall)
        elif name == "BRANCH":
            for b in av[1]:
                _check(list(b), dotall)
        elif name in _REPEATS:
            _check(list(av[2]), dotall)
        else:  # ASSERT, ASSERT_NOT, GROUPREF, GROUPREF_EXISTS, CATEGORY, ...
            raise _Unprunable


def _class_has_newline(items: Any) -> bool:
    neg = any(str(op) == "NEGATE" for op, _ in items)
    has = False
    for op, av in items:
        name = str(op)
        if name == "LITERAL" and av == 10:
            has = True
        elif name == "RANGE" and av[0] <= 10 <= av[1]:
            has = True
        elif name == "CATEGORY" and str(av) in ("CATEGORY_SPACE", "CATEGORY_NOT_DIGIT", "CATEGORY_NOT_WORD",
                                                "CATEGORY_LINEBREAK", "CATEGORY_UNI_SPACE",
                                                "CATEGORY_UNI_NOT_DIGIT", "CATEGORY_UNI_NOT_WORD",
                                                "CATEGORY_UNI_LINEBREAK"):
            has = True
    return has != neg


def possible_spans(content: ContentIndex | None, off: Any, ln: Any, pattern: str | bytes) -> list[int] | None:
    """Span numbers whose line may hold a match of ``pattern`` (a superset of those that do), or None
    when the content index cannot narrow it down to fewer than ``PRUNE_SHARE`` of the spans."""
    if content is None:
        return None
    if isinstance(pattern, bytes):
        try:
            pattern = pattern.decode("ascii")
        except UnicodeDecodeError:
            return None
    query = literal_query(pattern)
    if query is None:
        return None
    got = content.candidate_spans(off, ln, query)
    if got is None or len(got) > len(off) * PRUNE_SHARE:
        return None
    return got.tolist()
