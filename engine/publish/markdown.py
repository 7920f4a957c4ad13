"""Markdown for untrusted text: readable as plain text, unable to inject markup, links or notifications.

Every function cleans its input first (``engine.sanitize.clean``: control characters stripped,
secrets redacted), so a caller cannot forget to. What each one guarantees:

* ``md_text`` — inline prose. Escapes only what would become markup (emphasis, code, links,
  images, HTML, tables, strikethrough, math, a heading/quote/list at the start), so the source
  still reads as plain text. GitHub links ``@name``, ``#123`` and bare URLs *after* rendering —
  a backslash does not stop it — so a zero-width space goes after ``@`` and ``#`` and URLs
  become code spans.
* ``md_code`` — an inline code span the text cannot close (GitHub never links inside code).
* ``md_block`` — a fenced block whose fence is longer than any backtick run inside.
* ``md_cell`` — ``md_text`` for a table cell (``md_code(..., in_table=True)`` for code in a cell).
"""

from __future__ import annotations

import html
import re

from engine.sanitize import clean

ZWSP = "\u200b"

# what starts markup anywhere inline: emphasis, code, links/images, tables, strikethrough, math; an
# underscore inside a word (``lookup_order``) and a ``<`` that cannot open a tag stay as they are
_INLINE = re.compile(r"([\\`*\[\]|~$])|(?<!\w)_|_(?!\w)|<(?=[A-Za-z/!?])")
# an HTML entity or character reference would be decoded: escape its ampersand
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# a mention (@user, @org/team) or an issue/PR reference (#12, GH-12, owner/repo#12): break after @ or #
_MENTION = re.compile(r"(?<![\w`])@(?=[A-Za-z0-9])")
_ISSUE_REF = re.compile(r"#(?=\d)|(?<=\bGH)-(?=\d)", re.I)
# bare URLs and www. autolinks: shown as code
_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>`]*[^\s<>`.,;:!?'\")\]]")
# block markers that only matter at the start of a line
_LINE_START = re.compile(r"^(\s*)(?:([#>+=-])|(\d+)([.)]))")
_BACKTICKS = re.compile(r"`+")


def _one_line(text: object) -> str:
    return " ".join(clean(text).split())


def _escape_inline(s: str) -> str:
    s = _INLINE.sub(lambda m: "\\" + m.group(0), s)
    s = _ENTITY.sub(r"\\&", s)
    s = _MENTION.sub("@" + ZWSP, s)
    return _ISSUE_REF.sub(lambda m: m.group(0) + ZWSP, s)


def md_text(text: object) -> str:
    """Untrusted text as one line of inline Markdown (newlines become spaces)."""
    s = _one_line(text)
    out: list[str] = []
    pos = 0
    for m in _URL.finditer(s):
        out.append(_escape_inline(s[pos : m.start()]))
        out.append(md_code(m.group(0)))
        pos = m.end()
    out.append(_escape_inline(s[pos:]))
    return _LINE_START.sub(_escape_line_start, "".join(out), count=1)


def _escape_line_start(m: re.Match[str]) -> str:
    if m.group(2):
        return f"{m.group(1)}\\{m.group(2)}"
    return f"{m.group(1)}{m.group(3)}\\{m.group(4)}"


def md_cell(text: object) -> str:
    """Untrusted text for a table cell: one line, pipes escaped, never empty."""
    return md_text(text) or " "


def md_code(text: object, *, in_table: bool = False) -> str:
    """An inline code span holding untrusted text (one line), which its content cannot close.

    In a GFM table a pipe splits the cell even inside code, so ``in_table`` escapes it
    (the table parser removes that backslash).
    """
    s = _one_line(text)
    if not s:
        return "` `"
    longest = max((len(m) for m in _BACKTICKS.findall(s)), default=0)
    fence = "`" * (longest + 1)
    if s.startswith("`") or s.endswith("`") or (s.startswith(" ") and s.endswith(" ")):
        s = f" {s} "
    if in_table:
        s = s.replace("|", "\\|")
    return f"{fence}{s}{fence}"


def md_block(text: object, lang: str = "text") -> str:
    """A fenced code block holding untrusted text (newlines kept), which its content cannot close."""
    s = clean(text).rstrip("\n")
    longest = max((len(m) for m in _BACKTICKS.findall(s)), default=0)
    fence = "`" * max(3, longest + 1)
    lang = re.sub(r"[^\w+-]", "", lang)
    return f"{fence}{lang}\n{s}\n{fence}"


def md_details(summary: object, body: str) -> str:
    """A collapsed ``<details>`` block: ``summary`` is plain text (HTML-escaped here), ``body`` safe Markdown."""
    return f"<details><summary>{html.escape(_one_line(summary))}</summary>\n\n{body.strip()}\n\n</details>"
