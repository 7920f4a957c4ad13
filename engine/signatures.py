"""Signatures: the checkable predicates LLM-found failure modes become, their ids and the library file.

A signature says which spans show a failure mode (``engine.findings.Signature``). Two spellings
of the same predicate must be the same mode, so everything here works on the *normalized*
form: names trimmed and lower-cased (categories, tool and span names are compared without
case), an empty regex dropped, ``field`` irrelevant without a regex. The id is
``mode_id("signature", key)`` over that form: ``fm-`` + a hash, like every other mode id.

Regexes are written by a model reading attacker-controlled traces, so they are compiled with
RE2 (``google-re2``): matching is linear in the text, backtracking blow-ups cannot happen, and
what RE2 refuses (backreferences, lookarounds, huge repeats) comes back as a short message the
model can act on.

The library file (``signatures.json``) holds each accepted signature with what a later run
needs to report the mode without a model: title, mode category, description, fix, confidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import re2

from engine.findings import Signature, mode_id
from engine.safe_io import atomic_write_bytes, read_regular_bytes
from engine.sanitize import clean, clean_line
from engine.traces.normalize import CATEGORIES

__all__ = [
    "LIBRARY_FILE",
    "LibraryEntry",
    "SignatureError",
    "compile_regex",
    "load_library",
    "load_library_entries",
    "normalize_signature",
    "save_library",
    "signature_id",
    "signature_key",
    "validate_signature",
]

LIBRARY_FILE = "signatures.json"
DETECTOR = "signature"  # the ``detector`` of signature modes; with the key it hashes into the id
MAX_REGEX_CHARS = 500
MAX_NAME_CHARS = 300
RE2_MAX_MEM = 8 << 20  # compiled program size cap: a regex needing more is "too expensive"
LIBRARY_VERSION = 1

_FIELDS = ("error", "output", "input", "any")


class SignatureError(ValueError):
    """A signature we refuse; the message is short and says what to change."""


def _options() -> Any:
    opts = re2.Options()
    opts.log_errors = False  # RE2 would print every rejected model regex on stderr
    opts.max_mem = RE2_MAX_MEM
    return opts


@lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Any:
    """The RE2 program for ``pattern`` (cached); raises ``SignatureError`` with RE2's reason."""
    if len(pattern) > MAX_REGEX_CHARS:
        raise SignatureError(f"regex is {len(pattern)} chars; keep it under {MAX_REGEX_CHARS}")
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        hint = ""
        if "(?=" in reason or "(?!" in reason or "(?<" in reason or "invalid escape sequence: \\" in reason:
            hint = " (RE2 syntax: no lookarounds or backreferences)"
        raise SignatureError(f"invalid regex {pattern!r}: {reason}{hint}") from None


def _name(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    return text or None


def normalize_signature(sig: Signature | Mapping[str, Any]) -> Signature:
    """The canonical form: names trimmed and lower-cased, empty values dropped, ``field`` "any" without a regex.

    Accepts a ``Signature`` or a plain mapping (a model's JSON); raises ``SignatureError`` for a
    ``field`` that is not one of error/output/input/any. The regex itself is kept verbatim
    (whitespace in a pattern is meaningful); an empty one is dropped.
    """
    if isinstance(sig, Signature):
        raw: Mapping[str, Any] = sig.model_dump()
    elif isinstance(sig, Mapping):
        raw = sig
    else:
        raise SignatureError(f"a signature must be an object, not {type(sig).__name__}")
    regex = raw.get("regex")
    if regex is not None and not isinstance(regex, str):
        raise SignatureError("regex must be a string")
    regex = regex if regex and regex.strip() else None
    field = _name(raw.get("field")) or "any"
    if field not in _FIELDS:
        raise SignatureError(f"field must be one of {', '.join(_FIELDS)}, not {field!r}")
    return Signature(
        category=_name(raw.get("category")),
        tool_name=_name(raw.get("tool_name")),
        span_name=_name(raw.get("span_name")),
        field=field if regex is not None else "any",  # type: ignore[arg-type]
        regex=regex,
    )


def signature_key(sig: Signature | Mapping[str, Any]) -> str:
    """The normalized signature as one canonical string (sorted-key JSON): what the id hashes."""
    n = normalize_signature(sig)
    return orjson.dumps(
        {"category": n.category, "field": n.field, "regex": n.regex, "span_name": n.span_name,
         "tool_name": n.tool_name},
        option=orjson.OPT_SORT_KEYS,
    ).decode()


def signature_id(sig: Signature | Mapping[str, Any]) -> str:
    """``fm-`` + hash of the normalized signature: the same predicate found twice is the same mode."""
    return mode_id(DETECTOR, signature_key(sig))


def validate_signature(sig: Signature | Mapping[str, Any]) -> str | None:
    """None when the signature is usable; else one short sentence telling the model what to fix."""
    try:
        n = normalize_signature(sig)
    except SignatureError as exc:
        return str(exc)
    except ValueError as exc:  # pydantic: a non-string name etc.
        return f"malformed signature: {str(exc).splitlines()[0]}"
    if n.category is None and n.tool_name is None and n.span_name is None and n.regex is None:
        return "empty signature: give at least one of category, tool_name, span_name or regex"
    if n.category is not None and n.category not in CATEGORIES:
        return f"unknown category {n.category!r}; use one of {', '.join(CATEGORIES)}"
    for label, value in (("tool_name", n.tool_name), ("span_name", n.span_name)):
        if value is not None and len(value) > MAX_NAME_CHARS:
            return f"{label} is {len(value)} chars; give the exact name (under {MAX_NAME_CHARS})"
    if n.regex is None:
        return None
    try:
        rx = compile_regex(n.regex)
    except SignatureError as exc:
        return str(exc)
    if rx.search("") is not None:
        return (
            f"regex {n.regex!r} matches the empty string, so it matches every span; "
            "make it require the distinctive text (e.g. drop a trailing * or an empty alternative)"
        )
    only_regex = n.category is None and n.tool_name is None and n.span_name is None
    if only_regex and len(n.regex) < 4:
        return (
            f"regex {n.regex!r} is too short to identify one failure; quote the distinctive error "
            "or output text, or add tool_name / span_name / category"
        )
    return None


def check_signature(sig: Signature | Mapping[str, Any]) -> Signature:
    """The normalized signature, or ``SignatureError`` with ``validate_signature``'s message."""
    problem = validate_signature(sig)
    if problem is not None:
        raise SignatureError(problem)
    return normalize_signature(sig)


# ---------------------------------------------------------------- the library file


class LibraryEntry:
    """One accepted signature and what reporting its mode needs without a model."""

    __slots__ = ("signature", "title", "category", "description", "suggested_fix", "confidence")

    def __init__(
        self,
        signature: Signature,
        title: str = "",
        category: str = "llm",
        description: str | None = None,
        suggested_fix: str | None = None,
        confidence: float | None = None,
    ) -> None:
        self.signature = normalize_signature(signature)
        self.title = title or describe(self.signature)
        self.category = category or "llm"
        self.description = description
        self.suggested_fix = suggested_fix
        self.confidence = confidence

    @property
    def id(self) -> str:
        return signature_id(self.signature)

    def to_dict(self) -> dict[str, Any]:
        """The published form: texts cleaned like every published text (the predicate as is: it is the id)."""
        out: dict[str, Any] = {"id": self.id, "signature": self.signature.model_dump(),
                               "title": clean_line(self.title)[:200], "category": clean_line(self.category)[:60]}
        for k in ("description", "suggested_fix"):
            v = getattr(self, k)
            if v is not None:
                out[k] = clean(v)
        if self.confidence is not None:
            out["confidence"] = self.confidence
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LibraryEntry:
        raw = d.get("signature", d)
        if not isinstance(raw, Mapping):
            raise SignatureError("library entry without a signature object")
        conf = d.get("confidence")
        return cls(
            check_signature(raw),
            title=str(d.get("title") or ""),
            category=str(d.get("category") or "llm"),
            description=d.get("description") if isinstance(d.get("description"), str) else None,
            suggested_fix=d.get("suggested_fix") if isinstance(d.get("suggested_fix"), str) else None,
            confidence=float(conf) if isinstance(conf, (int, float)) and 0 <= conf <= 1 else None,
        )


def describe(sig: Signature) -> str:
    """A title for a signature nobody named: what it matches, in words."""
    parts = []
    if sig.tool_name:
        parts.append(f"tool `{sig.tool_name}`")
    if sig.span_name:
        parts.append(f"span `{sig.span_name}`")
    if sig.category:
        parts.append(f"{sig.category} spans")
    where = " ".join(parts) or "spans"
    if sig.regex:
        what = {"any": "text", "error": "errors", "output": "output", "input": "input"}[sig.field]
        return f"{where} with {what} matching /{sig.regex[:80]}/"
    return f"{where} (signature)"


def load_library_entries(path: Path) -> tuple[list[LibraryEntry], list[str]]:
    """Entries of a library file and one problem line per bad entry; a missing file is an empty library.

    A file that is not a library (bad JSON, wrong shape) raises ``ValueError`` with one line.
    """
    path = Path(path)
    if not path.exists():
        return [], []
    try:
        data = orjson.loads(read_regular_bytes(path))
    except (OSError, orjson.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"{path} is not a signature library: {str(exc).splitlines()[0]}") from None
    items = data.get("signatures") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError(f"{path} is not a signature library: no `signatures` list")
    entries: list[LibraryEntry] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        try:
            if not isinstance(item, Mapping):
                raise SignatureError("not an object")
            entry = LibraryEntry.from_dict(item)
        except ValueError as exc:
            problems.append(f"{path}: signature #{i + 1} skipped: {str(exc).splitlines()[0]}")
            continue
        if entry.id not in seen:
            seen.add(entry.id)
            entries.append(entry)
    return entries, problems


def load_library(path: Path) -> list[Signature]:
    """The (valid, normalized, de-duplicated) signatures of a library file; [] when it does not exist."""
    return [e.signature for e in load_library_entries(path)[0]]


def save_library(path: Path, sigs: Iterable[Signature | LibraryEntry]) -> None:
    """Write a library file atomically (readers see the old file or the new one), sorted by id."""
    entries: dict[str, LibraryEntry] = {}
    for s in sigs:
        e = s if isinstance(s, LibraryEntry) else LibraryEntry(s)
        entries.setdefault(e.id, e)
    body = {"schema_version": LIBRARY_VERSION,
            "signatures": [entries[k].to_dict() for k in sorted(entries)]}
    data = orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
