"""Refusals (the model declines the task) and refusal loops (it keeps declining within one run)."""

from __future__ import annotations

import re

from engine.analysis.detectors.base import Hit

DETECTOR = "refusal"
DETECTOR_LOOP = "refusal_loop"
_APOS = "['\u2019]"
REFUSAL = re.compile(
    rf"(?i)(?:\bI{_APOS}?m sorry,? but I (?:can(?:not|{_APOS}t)|am unable|won{_APOS}t|am not able)"
    rf"|\bI (?:can(?:not|{_APOS}t)|am unable to|am not able to|won{_APOS}t be able to|must decline to|will not)\s+"
    r"(?:help|assist|comply|provide|fulfill|complete|do that|process|proceed|continue|perform|share)"
    r"|\bI must (?:decline|refuse)\b"
    r"|\bas an AI(?: language model)?,? I (?:can(?:not|'t)|am unable|don't))"
)


# Every REFUSAL alternative contains one of these: a cheap necessary condition that keeps the regex
# off the vast majority of outputs. Leading letters are dropped so capitalised forms match without
# lower-casing ("Cannot" -> "annot", "Unable" -> "nable"); all-caps refusals are the price.
_CUES = ("n't", "n\u2019t", "N'T", "annot", "ANNOT", "nable", "ot able", "ill not", "eclin", "efus")


def is_refusal(text: str | None) -> bool:
    """Cheap cue check first (most outputs have none), then the phrase regex."""
    if not text:
        return False
    head = text[:3000]
    # any(cue in head for cue in _CUES), with one-character and shared-substring pre-checks (runs per LLM call)
    if (
        ("'" in head and ("n't" in head or "N'T" in head))
        or ("\u2019" in head and "n\u2019t" in head)
        or "annot" in head
        or "ANNOT" in head
        or ("able" in head and ("nable" in head or "ot able" in head))
        or "ill not" in head
        or "eclin" in head
        or "efus" in head
    ):
        return bool(REFUSAL.search(head))
    return False


def hit(agent: str, span_id: str, text: str) -> Hit:
    who = f" ({agent})" if agent else ""
    return Hit(
        DETECTOR,
        agent,
        f"Model refuses the request{who}",
        "refusal",
        span_id,
        text,
        "Check whether the refusal is policy-correct; if not, clarify in the system prompt what the agent "
        "is allowed to do, or route such requests elsewhere.",
    )


def loop_hit(agent: str, span_id: str, count: int) -> Hit:
    who = f" ({agent})" if agent else ""
    return Hit(
        DETECTOR_LOOP,
        agent,
        f"Refusal loop: model refuses repeatedly in one run{who}",
        "refusal_loop",
        span_id,
        f"{count} refusals in one run",
        "After a refusal, end the run or hand off instead of re-prompting the same request.",
    )
