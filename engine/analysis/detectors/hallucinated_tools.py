"""Hallucinated tools: the model asked for a tool it was not offered, or a tool call failed as unknown."""

from __future__ import annotations

from engine.analysis.detectors.base import Hit

DETECTOR = "hallucinated_tool"
FIX = (
    "Make sure every tool the prompt mentions is registered, and that tool names in instructions match "
    "the offered names exactly; consider constraining tool choice."
)


def hit(tool: str, span_id: str, example: str) -> Hit:
    return Hit(
        detector=DETECTOR,
        key=tool,
        title=f"Model calls a tool that does not exist: `{tool}`",
        category="hallucinated_tool",
        span_id=span_id,
        example=example,
        suggested_fix=FIX,
    )


def detect_requested(requested: list[tuple[str, str | None]], offered: dict, span_id: str) -> list[Hit]:
    """Requested tool names absent from the tools offered on the same LLM call (only when offered is known)."""
    if not offered:
        return []
    return [
        hit(name, span_id, f"requested {name}({args or ''}); offered: {', '.join(sorted(offered))}")
        for name, args in requested
        if name not in offered
    ]
