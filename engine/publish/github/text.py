"""Untrusted trace text for GitHub, capped to what each place can hold.

The escaping is ``engine.publish.markdown`` (mentions and references broken with a zero-width
space, no HTML, links shown as code, fences that cannot be closed) and the redaction is
``engine.sanitize``; this module adds the length caps, applied after redaction (``excerpt``) so a
cap never splits a secret open, and ``plain`` for check-run annotations, which are not Markdown.
"""

from __future__ import annotations

from engine.publish import markdown
from engine.sanitize import excerpt

ZWSP = markdown.ZWSP


def _cap(text: object, limit: int | None) -> str:
    return excerpt(text, limit) if limit is not None else excerpt(text, 1 << 20)


def md_text(text: object, limit: int | None = None) -> str:
    """Inline Markdown text, one line, safe in a table cell."""
    return markdown.md_cell(_cap(text, limit))


def md_code(text: object, limit: int | None = None, *, in_table: bool = False) -> str:
    """An inline code span its content cannot close."""
    return markdown.md_code(_cap(text, limit), in_table=in_table)


def md_block(text: object, limit: int | None = None, lang: str = "text") -> str:
    """A fenced code block its content cannot close."""
    return markdown.md_block(_cap(text, limit), lang=lang)


def plain(text: object, limit: int | None = None) -> str:
    """Plain text (check-run annotations): redacted, stripped, capped; no tags, mentions, references or links."""
    return markdown.plain_text(_cap(text, limit))
