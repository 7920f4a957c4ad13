"""Turn / step budget exhaustion: the agent ran out of turns, steps, recursion depth or cost budget."""

from __future__ import annotations

import re

from engine.analysis.detectors.base import Hit

DETECTOR = "budget_exhausted"
_KINDS: list[tuple[str, re.Pattern[str]]] = [
    ("max turns", re.compile(r"(?i)max(?:imum)?[ _-]?turns?|MaxTurnsExceeded|turn limit|too many turns")),
    ("recursion limit", re.compile(r"(?i)recursion[ _-]?limit|GraphRecursionError")),
    (
        "max steps",
        re.compile(r"(?i)max(?:imum)?[ _-]?(?:number of )?(?:steps|iterations)|(?:step|iteration) limit|"
                   r"agent stopped due to (?:iteration|time) limit"),
    ),
    ("cost limit", re.compile(r"(?i)\bexit_cost\b|cost limit|budget exceeded|CostLimitExceeded")),
    ("context budget", re.compile(r"(?i)\bexit_context\b")),
]


_CUES = ("turn", "recursion", "step", "iteration", "exit_", "cost", "budget", "limit")


def budget_kind(*texts: str | None) -> str | None:
    """Which budget a message says was exhausted, or None (cue words gate the regexes)."""
    for text in texts:
        if not text:
            continue
        low = text[:2000].lower()
        if not any(c in low for c in _CUES):
            continue
        for kind, pattern in _KINDS:
            if pattern.search(text[:2000]):
                return kind
    return None


def hit(kind: str, span_id: str, example: str) -> Hit:
    return Hit(
        DETECTOR,
        kind,
        f"Agent exhausts its budget ({kind})",
        "budget_exhaustion",
        span_id,
        example,
        "Look for the loop that burns the budget (repeated calls, retries, ping-pong) before raising the limit.",
    )
