"""Evaluate signatures over every span of a trace store: which spans of which traces match.

A signature (``engine.findings.Signature``) is checked on the normalized view of a span
(``engine.traces.normalize``): its category, tool name and span name compared without case,
and its RE2 regex searched in the error, output or input text (``span_texts``). Parsing and
normalizing a span costs far more than finding text in its raw line, so candidates are
narrowed first, soundly (never a span the full check would match):

* trace rollups of the index: a ``category`` needs a trace with spans of it, a ``tool_name`` a
  trace that called a tool of that name;
* raw-line filters, each one RE2 pass over an mmap of the file (or over the remaining
  candidates' lines once they are few): the regex itself when every character it can match is
  one JSON writes as itself (assertions dropped: that only widens it), else its required
  literal; the tool or span name; for ``field: error``, the marks every error span carries.
  Spans the index had to coerce (``state.slow``) may be spelled differently and always stay.

Only the candidates left are parsed and judged exactly; the normalized view is computed only
for spans that pass the cheap checks (category, names) and need a text. ``match_signatures``
evaluates many signatures reading each candidate span once (how every analysis re-applies
the library).
"""

from __future__ import annotations

import mmap
import os
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import re2

from engine.findings import Signature
from engine.signatures import (
    RE2_MAX_MEM,
    SignatureError,
    compile_regex,
    normalize_signature,
    signature_id,
    validate_signature,
)
from engine.traces import canonical_reader
from engine.traces.content_index import possible_spans
from engine.traces.formats.canonical import canonicalize_record
from engine.traces.index import TraceIndex, read_json
from engine.traces.normalize import (
    TOOL_ARGS_KEYS,
    TOOL_RESULT_KEYS,
    NormalizedSpan,
    as_text,
    llm_output_text,
    normalize,
    rollup,
)
from engine.traces.regex_scan import required_literals
from engine.traces.span import STATUS_ERROR, Span
from engine.traces.store import TraceStore

try:  # the parser ``regex_scan`` uses too; without it the regex-as-prefilter is off
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _sre_parse = None

__all__ = ["SignatureMatch", "match_signature", "match_signatures", "span_texts"]

EXAMPLE_CHARS = 240
# Characters some JSON encoders escape (quotes, backslash, slash, HTML-unsafe) — a literal containing
# one may be spelled differently in the raw line, so it cannot be a prefilter.
_UNSAFE = frozenset('"\\/<>&\'')
_INPUT_EXTRA_KEYS = ("gen_ai.input.messages", "gen_ai.prompt", "llm.prompts")
_ERROR_EXTRA_KEYS = ("exception.stacktrace",)
_CANON_KEYS = ("trace_state", "resource", "scope")
_FEW = 4  # below span_count / _FEW candidates, filters read only the candidates' lines
_SET_MIN = 3  # from this many whole-file filters on, one combined pass beats one pass each


@dataclass
class SignatureMatch:
    """Where one signature holds: ``{trace_id: [span_id, ...]}`` (store order) and counts.

    ``error`` is set (and nothing matched) when the signature is invalid; ``example`` is the
    matched text with some context from the first matching span, raw (sanitize before publishing).
    """

    sig_id: str
    signature: Signature
    traces: dict[str, list[str]] = field(default_factory=dict)
    span_count: int = 0
    scanned_spans: int = 0
    example: str | None = None
    example_at: tuple[str, str] | None = None
    error: str | None = None

    @property
    def trace_count(self) -> int:
        return len(self.traces)

    def matches(self, trace_id: str, span_id: str | None = None) -> bool:
        """Does the signature hold in this trace (on this span, when given)?"""
        spans = self.traces.get(trace_id)
        if spans is None:
            return False
        return span_id is None or not span_id or span_id in spans


@dataclass
class _Plan:
    """One signature, compiled: the exact predicate and the raw-line filters every match passes."""

    match: SignatureMatch
    category: str | None
    tool: str | None
    span_name: str | None
    field: str
    rx: Any
    raw_filters: list[Any]  # RE2 bytes programs; the raw line of every matching span contains a match
    error_only: bool = False  # only error spans can match


_SAFE_CHARS = frozenset(c for c in range(0x20, 0x7F) if chr(c) not in _UNSAFE)
# Unicode characters whose case folding reaches an ASCII letter: a case-insensitive search must find
# them too, as UTF-8 bytes (searched as text) or as a JSON \u escape.
_FOLDS = {"k": "\\\\u212a", "s": "\\\\u017f"}


def _safe_segment(lit: bytes) -> bytes | None:
    """The longest piece of a required literal no JSON encoder spells differently (>= 3 chars)."""
    best = b""
    for piece in re.split(rb"[\"\\/<>&'\x00-\x1f\x7f-\xff]", lit):
        if len(piece) > len(best):
            best = piece
    return best if len(best) >= 3 else None


def _ci_literal(text: str) -> str:
    """A case-insensitive pattern body for a plain literal, including the JSON escapes of its Unicode folds."""
    out = []
    for ch in text:
        fold = _FOLDS.get(ch.lower())
        out.append(f"(?:{re.escape(ch)}|{fold})" if fold else re.escape(ch))
    return "".join(out)


def _raw(pattern: str) -> Any:
    """An RE2 program over raw (UTF-8) lines; None when RE2 refuses it (then there is simply no filter)."""
    opts = re2.Options()
    opts.log_errors = False
    opts.max_mem = RE2_MAX_MEM
    try:
        return re2.compile(pattern.encode(), opts)
    except re2.error:
        return None


def _literal_prefilter(regex: str) -> Any:
    """A raw-line pattern every span the regex can match must contain, or None when there is none.

    ``(?i)`` at the very start is honoured by searching the literals case-insensitively.
    """
    body, ci = regex, False
    if body.startswith("(?i)"):
        body, ci = body[4:], True
    if "(?" in body:  # other inline flags change what a literal means: no prefilter
        return None
    lits, _ = required_literals(body)
    if not lits:
        return None
    safe = [_safe_segment(x) for x in lits]
    if any(s is None for s in safe):
        return None
    words = [s.decode("ascii") for s in safe if s is not None]
    if ci:
        return _raw("(?i)" + "|".join(_ci_literal(w) for w in words))
    return _raw("|".join(re.escape(w) for w in words))


def _name_prefilter(name: str) -> Any:
    """Spans named ``name`` (compared without case) carry it verbatim in their raw line."""
    if len(name) < 3 or any(ord(c) not in _SAFE_CHARS for c in name):
        return None
    return _raw("(?i)" + _ci_literal(name))


_ERROR_MARKS = _raw(r"STATUS_CODE_ERROR|\"error\.type\"|\"langfuse\.observation\.level\"")


def _raw_safe(tree: Any) -> bool:
    """Can every match of this parsed pattern only consist of characters JSON writes as themselves?

    Then a match in a decoded text is also a match in the raw line, and the regex itself is a
    sound prefilter over raw lines (anchors and word boundaries see other neighbours there: no).
    """
    for op, av in tree:
        name = str(op)
        if name == "LITERAL":
            if av not in _SAFE_CHARS:
                return False
        elif name == "IN":
            for iop, iav in av:
                iname = str(iop)
                if iname == "LITERAL" and iav in _SAFE_CHARS:
                    continue
                if iname == "RANGE" and all(c in _SAFE_CHARS for c in range(iav[0], iav[1] + 1)):
                    continue
                if iname == "CATEGORY" and str(iav) in ("CATEGORY_DIGIT", "CATEGORY_WORD"):
                    continue
                return False
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if not _raw_safe(av[2]):
                return False
        elif name == "SUBPATTERN":
            if av[1] or av[2] or not _raw_safe(av[-1]):  # inline flags in the group: no
                return False
        elif name == "BRANCH":
            if not all(_raw_safe(b) for b in av[1]):
                return False
        else:  # ANY, NOT_LITERAL, AT (anchors, \b), ASSERT, GROUPREF, ...
            return False
    return True


def _without_assertions(regex: str) -> str | None:
    """The pattern with ``^``, ``$``, ``\\b`` and ``\\B`` removed outside classes: it matches a superset
    (assertions only ever remove matches), and what remains may be a sound raw-line prefilter."""
    out: list[str] = []
    i, n, in_class = 0, len(regex), False
    while i < n:
        c = regex[i]
        if c == "\\":
            tok = regex[i : i + 2]
            if not in_class and tok in ("\\b", "\\B", "\\A", "\\z"):
                i += 2
                continue
            out.append(tok)
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if regex[i + 1 : i + 2] == "]":  # "[]...]": the first ] is a member
                return None
        elif c in "^$":
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out) or None


def _regex_prefilter(regex: str) -> Any:
    """The regex itself over raw lines (``\\d``/``\\w`` are ASCII in RE2 too) when that is sound."""
    if not regex.isascii() or _sre_parse is None:
        return None
    stripped = _without_assertions(regex)
    if stripped is None:
        return None
    try:
        tree = _sre_parse.parse(stripped, 0)
    except Exception:  # noqa: BLE001 - RE2-only syntax: no prefilter
        return None
    if tree.state.flags & (re.IGNORECASE | re.DOTALL | re.MULTILINE | re.VERBOSE) or not _raw_safe(tree):
        return None
    rx = _raw(stripped)
    return rx if rx is not None and rx.search(b"") is None else None


def _plan(sig: Signature | Mapping[str, Any]) -> _Plan:
    try:
        problem = validate_signature(sig)
        n = normalize_signature(sig)
    except (SignatureError, ValueError) as exc:
        problem, n = str(exc).splitlines()[0], Signature()
    sid = signature_id(n) if problem is None else ""
    m = SignatureMatch(sig_id=sid, signature=n, error=problem)
    if problem is not None:
        return _Plan(m, None, None, None, "any", None, [])
    filters: list[tuple[Any, Any] | None] = []
    if n.regex:
        filters.append(_regex_prefilter(n.regex) or _literal_prefilter(n.regex))
    for name in (n.tool_name, n.span_name):
        if name:
            filters.append(_name_prefilter(name))
    rx = compile_regex(n.regex) if n.regex else None
    error_only = bool(n.regex) and n.field == "error"
    return _Plan(m, n.category, n.tool_name, n.span_name, n.field, rx, [f for f in filters if f], error_only)


def _first(attrs: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for k in keys:
        v = attrs.get(k)
        if v is not None and v != "":
            return as_text(v)
    return None


def _flattened(attrs: Mapping[str, Any], prefix: str, suffix: str) -> str | None:
    parts = [v for k, v in attrs.items() if k.startswith(prefix) and k.endswith(suffix) and isinstance(v, str)]
    return "\n".join(parts) if parts else None


def span_texts(span: Span, ns: NormalizedSpan | None = None) -> dict[str, str | None]:
    """The texts a signature's regex is searched in: ``error``, ``output`` and ``input``.

    error: the status message / exception message and type (and stack trace) of an error span;
    output: a tool's result, an LLM's output text, else the span's ``output.value``-style value;
    input: a tool's arguments, else the span's input value or prompt messages.
    """
    ns = ns or normalize(span)
    attrs = span.get("attributes") or {}
    error = None
    if ns.is_error:
        error = "\n".join(x for x in (ns.error_message, ns.error_type, _first(attrs, _ERROR_EXTRA_KEYS)) if x)
    if ns.category == "tool":
        output, inp = ns.tool_result, ns.tool_arguments
    else:
        output = ns.output_text if ns.category == "llm" else None
        output = output or _first(attrs, TOOL_RESULT_KEYS)
        inp = _llm_input(attrs)
    return {"error": error or None, "output": output, "input": inp}


def _llm_input(attrs: Mapping[str, Any]) -> str | None:
    """The input text of a span that is not a tool call: its input value, else its prompt messages."""
    return (
        _first(attrs, TOOL_ARGS_KEYS)
        or _first(attrs, _INPUT_EXTRA_KEYS)
        or _flattened(attrs, "llm.input_messages.", "message.content")
    )


def _maybe_error(span: Span) -> bool:
    """A superset of ``normalize``'s error verdict, from plain dict gets (no view needed to rule a span out)."""
    attrs = span.get("attributes") or {}
    return (span.get("status") or {}).get("code") == STATUS_ERROR or "error.type" in attrs or (
        "langfuse.observation.level" in attrs)


class _View:
    """What the plans ask of one span, each piece computed once and only when asked."""

    __slots__ = ("span", "cat", "tool", "name", "_ns", "_texts")

    def __init__(self, span: Span) -> None:
        self.span = span
        cat, _, _, _, tool, _, _ = rollup(span)  # the index's cheap facts: same category and tool name as normalize
        self.cat = cat
        self.tool = (tool or "").strip().lower()
        self.name = str(span.get("name") or "").strip().lower()
        self._ns: NormalizedSpan | None = None
        self._texts: dict[str, str | None] | None = None

    def texts(self) -> dict[str, str | None]:
        if self._texts is None:
            if self.cat == "llm" and not _maybe_error(self.span):
                # what span_texts gives for a non-error LLM span, without normalize's tool and message parsing
                attrs = self.span.get("attributes") or {}
                self._texts = {"error": None, "output": llm_output_text(attrs) or _first(attrs, TOOL_RESULT_KEYS),
                               "input": _llm_input(attrs)}
            else:
                self._ns = normalize(self.span)
                self._texts = span_texts(self.span, self._ns)
        return self._texts


def _judge(p: _Plan, v: _View) -> tuple[bool, Any]:
    """Does the plan hold on this span? Returns (verdict, (text, start, end) of the regex match or None)."""
    if p.category is not None and v.cat != p.category:
        return False, None
    if p.tool is not None and v.tool != p.tool:
        return False, None
    if p.span_name is not None and v.name != p.span_name:
        return False, None
    if p.rx is None:
        return True, None
    if p.error_only and not _maybe_error(v.span):
        return False, None
    texts = v.texts()
    fields = ("error", "output", "input") if p.field == "any" else (p.field,)
    for f in fields:
        text = texts.get(f)
        if text:
            m = p.rx.search(text)
            if m is not None:
                return True, (text, m.start(), m.end())
    return False, None


def _tool_mask(idx: TraceIndex, tool: str) -> int:
    mask = 0
    for name, bit in idx.state.vbit.items():
        if name.strip().lower() == tool:
            mask |= bit
    return mask


def _trace_candidates(p: _Plan, idx: TraceIndex) -> list[int] | None:
    """Trace numbers of this file that can hold the signature (None: no trace-level narrowing)."""
    cols = idx.state.cols
    traces: list[int] | None = None
    if p.category is not None:
        col = cols[canonical_reader.CAT_SLOT[p.category]]
        traces = [t for t in range(len(idx.trace_ids)) if col[t]]
    if p.tool is not None:
        mask = _tool_mask(idx, p.tool)
        col = cols[canonical_reader.M_TOOL]
        base = traces if traces is not None else range(len(idx.trace_ids))
        traces = [t for t in base if col[t] & mask] if mask else []
    return traces


def _scan_file(mm: Any, off: Any, ln: Any, rx: Any) -> set[int]:
    """Span numbers whose raw line holds a match of ``rx``: one RE2 pass over the whole map, skipping
    to the end of a span's line after its first match (no filter can match across a newline)."""
    hits: set[int] = set()
    size = len(mm)
    pos = 0
    search = rx.search
    while pos < size:
        m = search(mm, pos)
        if m is None:
            break
        at = m.start()
        i = bisect_right(off, at) - 1
        if i < 0 or at >= off[i] + ln[i]:  # inside a line that is not a kept span
            nl = mm.find(b"\n", at)
            pos = size if nl < 0 else nl + 1
            continue
        hits.add(i)
        pos = off[i] + ln[i]
    return hits


def _check_lines(mm: Any, off: Any, ln: Any, rx: Any, cands: Iterable[int]) -> set[int]:
    """The candidates whose own raw line holds a match of ``rx``."""
    search = rx.search
    return {i for i in cands if search(mm, off[i], off[i] + ln[i]) is not None}


def _set_pass(mm: Any, off: Any, ln: Any, programs: Sequence[Any]) -> dict[bytes, set[int]] | None:
    """Every program's span hits from one pass over the file: their alternation finds the lines any
    of them can match (one RE2 scan), then an RE2 set says which ones match on each of those lines.

    None when RE2 cannot build them (its memory cap): callers scan program by program.
    """
    union = _raw("|".join(f"(?:{prog.pattern.decode()})" for prog in programs))
    opts = re2.Options()
    opts.log_errors = False
    opts.max_mem = 4 * RE2_MAX_MEM
    rs = re2.Set.SearchSet(opts)
    try:
        for prog in programs:
            rs.Add(prog.pattern)
        rs.Compile()
    except (re2.error, ValueError, TypeError):
        return None
    if union is None:
        return None
    hits: list[set[int]] = [set() for _ in programs]
    match = rs.Match
    for i in sorted(_scan_file(mm, off, ln, union)):
        a = off[i]
        for k in match(mm[a : a + ln[i]]) or ():
            hits[k].add(i)
    return {prog.pattern: h for prog, h in zip(programs, hits, strict=True)}


def _filters(p: _Plan) -> list[Any]:
    return p.raw_filters + ([_ERROR_MARKS] if p.error_only and _ERROR_MARKS is not None else [])


def _span_candidates(p: _Plan, idx: TraceIndex, mm: Any, full: dict[bytes, set[int]]) -> set[int] | None:
    """Span numbers of this file that can hold the signature (None: every span).

    Trace rollups first, then each raw-line filter over the survivors (its whole-file hits,
    computed once per program in ``full``, or the survivors' own lines once they are few). Spans
    the index had to coerce (``state.slow``) may be spelled differently in their raw line: they
    always stay.
    """
    traces = _trace_candidates(p, idx)
    cands: set[int] | None = None
    if traces is not None:
        cands = {n for t in traces for n in idx.spans_of(t)}
    st = idx.state
    for rx in _filters(p):
        if cands is not None and not cands:
            return cands
        if rx.pattern not in full and cands is not None and len(cands) * _FEW < idx.span_count:
            hits = _check_lines(mm, st.off, st.ln, rx, cands)
        else:
            if rx.pattern not in full:
                near = possible_spans(idx.content, st.off, st.ln, rx.pattern)  # the content index's superset
                full[rx.pattern] = _scan_file(mm, st.off, st.ln, rx) if near is None else _check_lines(
                    mm, st.off, st.ln, rx, near)
            hits = full[rx.pattern] if cands is None else full[rx.pattern] & cands
        if st.slow:
            hits = hits | (st.slow if cands is None else (st.slow & cands))
        cands = hits
    return cands


def _read_span(idx: TraceIndex, n: int, mm: Any) -> Span | None:
    """Span ``n`` of this index as a canonical dict (the store's reading, without its structure repairs)."""
    st = idx.state
    d = read_json(mm[st.off[n] : st.off[n] + st.ln[n]].rstrip(b"\r\n"))
    if n in st.slow or type(d) is not dict or any(k not in d for k in _CANON_KEYS):
        d, _, _ = canonicalize_record(d)
    return d if isinstance(d, dict) else None


def _example(found: tuple[str, int, int]) -> str:
    text, a, b = found
    lo = max(0, a - EXAMPLE_CHARS // 3)
    return text[lo : min(len(text), max(b, a + 1) + EXAMPLE_CHARS // 3)][:EXAMPLE_CHARS]


def _open(store_or_paths: Any) -> TraceStore:
    if isinstance(store_or_paths, TraceStore):
        return store_or_paths
    if isinstance(store_or_paths, (str, os.PathLike)):
        return TraceStore.open([store_or_paths])
    return TraceStore.open(list(store_or_paths))


def _map(path: str) -> Any:
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return b""
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def match_signatures(
    store_or_paths: TraceStore | str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    sigs: Sequence[Signature | Mapping[str, Any]],
) -> list[SignatureMatch]:
    """Evaluate every signature over the whole store, each candidate span parsed once; results in input order.

    An invalid signature comes back with ``error`` set and no matches (never raises for one).
    """
    store = _open(store_or_paths)
    plans = [_plan(s) for s in sigs]
    live = [p for p in plans if p.match.error is None]
    order = {tid: g for g, tid in enumerate(store.trace_ids)}
    for idx in store.indexes:
        if not live or idx.span_count == 0:
            continue
        mm = _map(idx.path)
        try:
            _match_file(idx, mm, live, order)
        finally:
            if isinstance(mm, mmap.mmap):
                mm.close()
    for p in live:
        p.match.traces = {t: p.match.traces[t] for t in sorted(p.match.traces, key=order.__getitem__)}
    return [p.match for p in plans]


def _kept_spans(idx: TraceIndex) -> set[int] | None:
    """Span numbers that belong to a trace: the span arrays keep those the store dropped as read
    from an earlier file (``TraceIndex.drop_spans``). None: every span of the file is kept."""
    tspans = idx.state.tspans
    if sum(map(len, tspans)) == idx.span_count:
        return None
    return {n for sp in tspans for n in sp}


def _match_file(idx: TraceIndex, mm: Any, live: list[_Plan], order: dict[str, int]) -> None:
    full: dict[bytes, set[int]] = {}
    wide: dict[bytes, Any] = {}  # first filters some plan runs over many spans: one pass for all of them
    for p in live:
        traces = _trace_candidates(p, idx)
        filters = _filters(p)
        if filters and (traces is None or sum(len(idx.spans_of(t)) for t in traces) * _FEW >= idx.span_count):
            wide.setdefault(filters[0].pattern, filters[0])
    if len(wide) >= _SET_MIN:
        full = _set_pass(mm, idx.state.off, idx.state.ln, list(wide.values())) or {}
    per_plan = [_span_candidates(p, idx, mm, full) for p in live]
    if all(c is not None and not c for c in per_plan):
        return
    kept = _kept_spans(idx)
    todo: Iterable[int]
    if any(c is None for c in per_plan):
        todo = range(idx.span_count) if kept is None else sorted(kept)
    else:
        union: set[int] = set()
        for c in per_plan:
            union |= c  # type: ignore[arg-type]
        todo = sorted(union if kept is None else union & kept)
    tids, tr = idx.trace_ids, idx.state.tr
    for n in todo:
        want = [k for k, c in enumerate(per_plan) if c is None or n in c]
        if not want:
            continue
        span = _read_span(idx, n, mm)
        if span is None:
            continue
        view = _View(span)
        tid = tids[tr[n]]
        sid = span.get("span_id") or ""
        for k in want:
            p = live[k]
            p.match.scanned_spans += 1
            ok, hit = _judge(p, view)
            if not ok:
                continue
            p.match.span_count += 1
            p.match.traces.setdefault(tid, []).append(sid)
            first = p.match.example_at
            if first is None or (order[tid], sid) < (order[first[0]], first[1]):
                p.match.example_at = (tid, sid)
                p.match.example = _example(hit) if hit is not None else None


def match_signature(
    store_or_paths: TraceStore | str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    sig: Signature | Mapping[str, Any],
) -> SignatureMatch:
    """Evaluate one signature over every span of the store: ``{trace_id: [span_id, ...]}`` plus counts."""
    return match_signatures(store_or_paths, [sig])[0]
