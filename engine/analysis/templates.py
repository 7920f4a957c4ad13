"""Error-message templates: mask the variable parts so one failure family gets one key.

Regex masking, not drain3: drain3's clusters depend on the order messages arrive (a cluster's
template generalises as it absorbs lines), so the same family could get a different template —
and a different failure-mode id — when runs are shuffled or subsampled. A pure function of the
message cannot. The masks cover what varies between occurrences of one error: quoted values,
URLs, paths, e-mails, UUIDs, hex ids and any word containing a digit (numbers, ``HAT030``,
``gift_card_5094406``, dates, ``30s``).
"""

from __future__ import annotations

import re

from engine.sanitize import clean

MAX_TEMPLATE_CHARS = 160
WILDCARD = "<*>"

# (pattern, replacement, cheap necessary condition): the condition keeps each regex off messages it
# cannot match — masking runs for every error in a million-span dump.
_MASKS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I), "<URL>", ("://",)),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "<EMAIL>", ("@",)),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<UUID>", ("-",)),
    (re.compile(r"\"(?:[^\"\\\n]|\\.){0,400}\""), '"<*>"', ('"',)),
    (re.compile(r"(?<![\w])'(?:[^'\\\n]|\\.){0,400}'(?![\w])"), "'<*>'", ("'",)),
    (re.compile(r"`[^`\n]{0,400}`"), "`<*>`", ("`",)),
    (re.compile(r"(?:[A-Za-z]:\\|~?/)(?:[\w.@+-]+[/\\])+[\w.@+-]*"), "<PATH>", ("/", "\\")),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<HEX>", ("0x", "0X")),
    (re.compile(r"\b[0-9a-f]{12,}\b", re.I), "<HEX>", ()),
    # any token (run of word chars . : -) containing a digit; the lookbehind/lookahead pair tests each
    # token once instead of backtracking through it
    (re.compile(r"(?<![\w.:-])(?=[\w.:-]*\d)[\w.:-]+"), WILDCARD, ()),
]
_DIGIT = re.compile(r"\d")
_CACHE: dict[str, str] = {}
_CACHE_MAX = 50_000
_SPACES = re.compile(r"\s+")
_REPEATED_WILDCARDS = re.compile(r"(?:<\*>[\s,;]*){2,}")


TRACEBACK_HEADER = "Traceback (most recent call last):"


def first_line(text: str) -> str:
    """The first non-blank line (multi-line dumps are keyed by their head), never a traceback header.

    LangChain records an error as ``repr(exc)`` glued to its traceback (``ValueError('x')Traceback
    (most recent call last):``): the error is what comes before the header; a bare traceback's error
    is its last line.
    """
    if TRACEBACK_HEADER in text:
        head, _, tail = text.partition(TRACEBACK_HEADER)
        if head.strip():
            text = head
        else:
            lines = [line.strip() for line in tail.splitlines() if line.strip()]
            return lines[-1] if lines else ""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def template_of(message: str | None) -> str:
    """Mask a message into its family template (deterministic, order-independent; memoized)."""
    if not message:
        return ""
    message = str(message)
    cached = _CACHE.get(message)
    if cached is not None:
        return cached
    text = clean(first_line(message)[:2000])  # secrets out before masking and the length cap: ids stay stable
    has_digit = _DIGIT.search(text) is not None
    for pattern, repl, needs in _MASKS:
        if needs:
            if not any(n in text for n in needs):
                continue
        elif not has_digit and repl != "<HEX>":
            continue
        text = pattern.sub(repl, text)
    text = _SPACES.sub(" ", text).strip()
    if "<*>" in text:
        text = _REPEATED_WILDCARDS.sub("<*> ", text).strip()
    if len(text) > MAX_TEMPLATE_CHARS:
        text = text[:MAX_TEMPLATE_CHARS].rstrip() + "…"
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[message] = text
    return text
