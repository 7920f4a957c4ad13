"""Exceptions and errored spans that no more specific detector explains, by type and message template."""

from __future__ import annotations

from engine.analysis.detectors.base import Hit
from engine.analysis.templates import template_of

DETECTOR = "exception"


def hit(error_type: str | None, message: str | None, span_name: str, span_id: str) -> Hit:
    etype = error_type or ""
    tmpl = template_of(message) or "(no message)"
    label = f"{etype}: {tmpl}" if etype and not tmpl.startswith(etype) else tmpl
    return Hit(
        DETECTOR,
        f"{etype}\x1f{tmpl}",
        f"Error: {label}",
        "exception",
        span_id,
        f"{span_name}: {message or etype}",
        None,
        ("spans", span_name),
    )
