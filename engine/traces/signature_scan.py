"""Evaluate signatures over every span of a trace store: which spans of which traces match.

A signature (``engine.findings.Signature``) is checked on the normalized view of a span
(``engine.traces.normalize``): its category, tool name and span name compared without case,
and its RE2 regex searched in the error, output or input text (``span_texts``). Reading and
normalizing every span costs a parse per span, so the index narrows first, soundly:

* trace rollups: a ``category`` needs a trace with spans of it, a ``tool_name`` a trace that
  called a tool of that name;
* the regex's required literal (``regex_scan.required_literals``): when every match must
  contain a plain ASCII literal that JSON never escapes, only spans whose raw line contains it
  (one memchr-speed pass over an mmap of the file) can match.

Only the candidates left are parsed and judged exactly. ``match_signatures`` evaluates many
signatures reading each candidate span once (how every analysis re-applies the library).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.findings import Signature
from engine.signatures import (
    SignatureError,
    compile_regex,
    normalize_signature,
    signature_id,
    validate_signature,
)
from engine.traces import canonical_reader as R
from engine.traces.formats.canonical import canonicalize_record
from engine.traces.index import TraceIndex, read_json
from engine.traces.normalize import TOOL_ARGS_KEYS, TOOL_RESULT_KEYS, NormalizedSpan, normalize
from engine.traces.regex_scan import compile_guarded, matching_spans, required_literals

try:  # the parser ``regex_scan`` uses too; without it the regex-as-prefilter is off
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse  # type: ignore[no-redef]
from engine.traces.span import Span
from engine.traces.store import TraceStore

__all__ = ["SignatureMatch", "match_signature", "match_signatures", "span_texts"]

EXAMPLE_CHARS = 240
# Characters some JSON encoders escape (quotes, backslash, slash, HTML-unsafe) — a literal containing
# one may be spelled differently in the raw line, so it cannot be a prefilter.
_UNSAFE = frozenset('"\\/<>&\'')
_INPUT_EXTRA_KEYS = ("gen_ai.input.messages", "gen_ai.prompt", "llm.prompts")
_ERROR_EXTRA_KEYS = ("exception.stacktrace",)
_CANON_KEYS = ("trace_state", "resource", "scope")


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
    """One signature, compiled: the exact predicate and the raw-line prefilters every match passes."""

    match: SignatureMatch
    category: str | None
    tool: str | None
    span_name: str | None
    field: str
    rx: Any
    raw_filters: list[tuple[Any, Any]]  # (bytes, text) guarded patterns; a match's raw line hits each
    error_only: bool = False  # only error spans can match (plus spans the index had to coerce)


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


def _guarded(pattern: str) -> tuple[Any, Any] | None:
    try:
        return compile_guarded(pattern)
    except ValueError:
        return None


def _literal_prefilter(regex: str) -> tuple[Any, Any] | None:
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
        return _guarded("(?i)" + "|".join(_ci_literal(w) for w in words))
    return _guarded("|".join(re.escape(w) for w in words))


def _name_prefilter(name: str) -> tuple[Any, Any] | None:
    """Spans named ``name`` (compared without case) carry it verbatim in their raw line."""
    if len(name) < 3 or any(ord(c) not in _SAFE_CHARS for c in name):
        return None
    return _guarded("(?i)" + _ci_literal(name))


_ERROR_MARKS = _guarded(r"STATUS_CODE_ERROR|\"error\.type\"|\"langfuse\.observation\.level\"")


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


def _regex_prefilter(regex: str) -> tuple[Any, Any] | None:
    """The regex itself over raw lines (as bytes: ``\\d``/``\\w`` are ASCII, as in RE2) when that is sound."""
    if not regex.isascii():
        return None
    stripped = _without_assertions(regex)
    if stripped is None:
        return None
    regex = stripped
    try:
        tree = _sre_parse.parse(regex, 0)
    except Exception:  # noqa: BLE001 - RE2-only syntax: no prefilter
        return None
    if tree.state.flags & (re.IGNORECASE | re.DOTALL | re.MULTILINE | re.VERBOSE) or not _raw_safe(tree):
        return None
    try:
        rx = re.compile(regex.encode())
    except re.error:
        return None
    if rx.search(b"") is not None:
        return None
    return _guarded(regex) if not re.search(r"\\[wWdDsSbB]", regex) else _bytes_only(regex)


def _bytes_only(regex: str) -> tuple[Any, Any] | None:
    """``compile_guarded`` keeps ``\\w``/``\\d`` patterns as text (Unicode classes); as a prefilter the
    ASCII meaning is the right one, so search the bytes form on both paths."""
    pair = _guarded(regex)
    if pair is None:
        return None
    twin = pair[1].ascii_twin()
    return (twin, pair[1]) if twin is not None else None


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


def _as_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    import orjson

    try:
        return orjson.dumps(v).decode()
    except TypeError:
        return str(v)


def _first(attrs: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for k in keys:
        v = attrs.get(k)
        if v is not None and v != "":
            return _as_text(v)
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
        inp = (
            _first(attrs, TOOL_ARGS_KEYS)
            or _first(attrs, _INPUT_EXTRA_KEYS)
            or _flattened(attrs, "llm.input_messages.", "message.content")
        )
    return {"error": error or None, "output": output, "input": inp}


def _judge(p: _Plan, span: Span, ns: NormalizedSpan, texts: dict[str, str | None] | None) -> tuple[bool, Any]:
    """Does the plan hold on this span? Returns (verdict, the regex match or None)."""
    if p.category is not None and ns.category != p.category:
        return False, None
    if p.tool is not None and (ns.tool_name or "").strip().lower() != p.tool:
        return False, None
    if p.span_name is not None and (ns.name or "").strip().lower() != p.span_name:
        return False, None
    if p.rx is None:
        return True, None
    assert texts is not None
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
        col = cols[R.CAT_SLOT[p.category]]
        traces = [t for t in range(len(idx.trace_ids)) if col[t]]
    if p.tool is not None:
        mask = _tool_mask(idx, p.tool)
        col = cols[R.M_TOOL]
        base = traces if traces is not None else range(len(idx.trace_ids))
        traces = [t for t in base if col[t] & mask] if mask else []
    return traces


def _span_candidates(p: _Plan, idx: TraceIndex) -> set[int] | None:
    """Span numbers of this file that can hold the signature (None: every span).

    Trace rollups first, then each raw-line filter over the survivors (the whole file in one mmap
    pass while they are many, only their lines once they are few). Spans the index had to coerce
    (``state.slow``) may be spelled differently in their raw line: they always stay candidates.
    """
    traces = _trace_candidates(p, idx)
    cands: set[int] | None = None
    if traces is not None:
        cands = {n for t in traces for n in idx.spans_of(t)}
    filters = list(p.raw_filters)
    if p.error_only and _ERROR_MARKS is not None:
        filters.append(_ERROR_MARKS)
    slow = idx.state.slow
    for brx, trx in filters:
        if cands is not None and not cands:
            return cands
        few = cands is not None and len(cands) * 4 < idx.span_count
        hits = matching_spans(idx.path, idx.state.off, idx.state.ln, brx, trx, cands if few else None)
        if slow:
            hits |= slow if cands is None else (slow & cands)
        cands = hits if cands is None else cands & hits
    return cands


def _read_span(idx: TraceIndex, n: int, fh: Any) -> Span | None:
    """Span ``n`` of this index as a canonical dict (the store's reading, without its structure repairs)."""
    d = read_json(idx.read_raw(n, fh))
    if n in idx.state.slow or type(d) is not dict or any(k not in d for k in _CANON_KEYS):
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
        per_plan = [_span_candidates(p, idx) for p in live]
        if all(c is not None and not c for c in per_plan):
            continue
        if any(c is None for c in per_plan):
            todo: Iterable[int] = range(idx.span_count)
        else:
            union: set[int] = set()
            for c in per_plan:
                union |= c  # type: ignore[arg-type]
            todo = sorted(union)
        needs_text = [p.rx is not None for p in live]
        tids, tr = idx.trace_ids, idx.state.tr
        with open(idx.path, "rb") as fh:
            for n in todo:
                want = [k for k, c in enumerate(per_plan) if c is None or n in c]
                if not want:
                    continue
                span = _read_span(idx, n, fh)
                if span is None:
                    continue
                ns = normalize(span)
                texts = span_texts(span, ns) if any(needs_text[k] for k in want) else None
                tid = tids[tr[n]]
                sid = span.get("span_id") or ""
                for k in want:
                    p = live[k]
                    p.match.scanned_spans += 1
                    ok, hit = _judge(p, span, ns, texts)
                    if not ok:
                        continue
                    p.match.span_count += 1
                    p.match.traces.setdefault(tid, []).append(sid)
                    first = p.match.example_at
                    if first is None or (order[tid], sid) < (order[first[0]], first[1]):
                        p.match.example_at = (tid, sid)
                        p.match.example = _example(hit) if hit is not None else None
    for p in live:
        p.match.traces = {t: p.match.traces[t] for t in sorted(p.match.traces, key=order.__getitem__)}
    return [p.match for p in plans]


def match_signature(
    store_or_paths: TraceStore | str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    sig: Signature | Mapping[str, Any],
) -> SignatureMatch:
    """Evaluate one signature over every span of the store: ``{trace_id: [span_id, ...]}`` plus counts."""
    return match_signatures(store_or_paths, [sig])[0]
