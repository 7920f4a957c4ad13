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


# ``[REDACTED]`` reads better unescaped, and only a following ``(``, ``[`` or ``:`` could make it a link
_REDACTED_ESCAPED = re.compile(r"\\\[REDACTED\\\](?![(\[:])")


def _escape_inline(s: str) -> str:
    s = _INLINE.sub(lambda m: "\\" + m.group(0), s)
    s = _REDACTED_ESCAPED.sub("[REDACTED]", s)
    s = _ENTITY.sub(r"\\&", s)
    s = _MENTION.sub("@" + ZWSP, s)
    return _ISSUE_REF.sub(lambda m: m.group(0) + ZWSP, s)


def _segment(s: str, at_line_start: bool) -> str:
    out: list[str] = []
    pos = 0
    for m in _URL.finditer(s):
        out.append(_escape_inline(s[pos : m.start()]))
        out.append(md_code(m.group(0)))
        pos = m.end()
    out.append(_escape_inline(s[pos:]))
    joined = "".join(out)
    return _LINE_START.sub(_escape_line_start, joined, count=1) if at_line_start else joined


def _escape_line_start(m: re.Match[str]) -> str:
    if m.group(2):
        return f"{m.group(1)}\\{m.group(2)}"
    return f"{m.group(1)}{m.group(3)}\\{m.group(4)}"


def md_text(text: object) -> str:
    """Untrusted text as one line of inline Markdown (newlines become spaces)."""
    return _segment(_one_line(text), True)


_SIMPLE_CODE = re.compile(r"`([^`\n]+)`")


def md_title(text: object, *, in_table: bool = False) -> str:
    """A title or short message: like ``md_text``, but its well-formed `code` spans stay code.

    Detectors quote tool and agent names in backticks; keeping them as code reads better than
    escaped backticks, and a span of non-backtick characters cannot close early.
    """
    s = _one_line(text)
    out: list[str] = []
    pos = 0
    for m in _SIMPLE_CODE.finditer(s):
        out += [_segment(s[pos : m.start()], pos == 0), md_code(m.group(1), in_table=in_table)]
        pos = m.end()
    out.append(_segment(s[pos:], pos == 0))
    return "".join(out)


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


_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_FENCE_LINE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_PROSE_UNSAFE = re.compile(r"<(?=[A-Za-z/!?])|[\[\]$]|&(?=#?[A-Za-z0-9]+;)")


def _prose_segment(s: str) -> str:
    s = _PROSE_UNSAFE.sub(lambda m: "\\" + m.group(0), s)
    s = _MENTION.sub("@" + ZWSP, s)
    s = _ISSUE_REF.sub(lambda m: m.group(0) + ZWSP, s)
    out, pos = [], 0
    for m in _URL.finditer(s):
        out += [s[pos : m.start()], f"`{m.group(0)}`"]
        pos = m.end()
    return "".join([*out, s[pos:]])


_HEADING = re.compile(r"^ {0,3}(#{1,6})(?=\s|$)")


def md_prose(text: object, *, min_heading: int = 1) -> str:
    """Untrusted *Markdown* (an LLM's answer) kept as Markdown but disarmed.

    Lists, emphasis, headings, tables and code stay; raw HTML, links, images, math, mentions and
    issue references do not (brackets and ``<`` escaped, URLs shown as code); an open fence is
    closed at the end so nothing after it is swallowed. Headings are demoted to at least
    ``min_heading`` so the text cannot restructure the document it is embedded in.
    """
    lines_out: list[str] = []
    fence: str | None = None
    for line in clean(text).splitlines():
        m = _FENCE_LINE.match(line)
        if fence is not None:
            lines_out.append(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):]:
                fence = None
            continue
        if m:
            fence = m.group(1)
            lines_out.append(line)
            continue
        h = _HEADING.match(line)
        if h and len(h.group(1)) < min_heading:
            line = "#" * min_heading + line[h.end() :]
        parts, pos = [], 0
        for c in _CODE_SPAN.finditer(line):
            parts += [_prose_segment(line[pos : c.start()]), c.group(0)]
            pos = c.end()
        parts.append(_prose_segment(line[pos:]))
        lines_out.append("".join(parts))
    if fence is not None:
        lines_out.append(fence)
    return "\n".join(lines_out)


def md_details(summary: object, body: str) -> str:
    """A collapsed ``<details>`` block: ``summary`` is plain text (HTML-escaped here), ``body`` safe Markdown."""
    return f"<details><summary>{html.escape(_one_line(summary))}</summary>\n\n{body.strip()}\n\n</details>"


_PLAIN_MENTION_OR_REF = re.compile(r"([@#])(?=[A-Za-z0-9])")
_PLAIN_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(?=//)")


def plain_text(text: object) -> str:
    """Plain text that a viewer may still render as Markdown or HTML (check-run annotations, JUnit names and
    messages shown by test-report actions): cleaned, no tags, mentions, references or links."""
    out = clean(text).strip().replace("<", "‹").replace(">", "›")
    out = _PLAIN_MENTION_OR_REF.sub(lambda m: m.group(1) + ZWSP, out)
    return _PLAIN_SCHEME.sub(lambda m: m.group(1) + ":" + ZWSP, out)
