"""Guardrail trips: a guardrail span that errored or reports its tripwire triggered."""

from __future__ import annotations

import re
from typing import Any

from engine.analysis.detectors.base import Hit

DETECTOR = "guardrail_tripped"
_TRIP_KEYS = ("guardrail.triggered", "guardrail.tripwire_triggered", "tripwire_triggered",
              "openai_agents.guardrail.triggered")
_TRIP_TYPE = re.compile(r"(?i)tripwire|guardrail")


def tripped(attrs: dict[str, Any], is_error: bool, error_type: str | None) -> bool:
    if any(attrs.get(k) in (True, "true", "True", 1) for k in _TRIP_KEYS):
        return True
    return is_error or bool(error_type and _TRIP_TYPE.search(error_type))


def guardrail_name(attrs: dict[str, Any], span_name: str) -> str:
    for k in ("guardrail.name", "openai_agents.guardrail.name", "gen_ai.guardrail.name"):
        v = attrs.get(k)
        if isinstance(v, str) and v:
            return v
    return span_name


def hit(name: str, span_id: str, example: str) -> Hit:
    return Hit(
        DETECTOR,
        name,
        f"Guardrail `{name}` trips",
        "guardrail",
        span_id,
        example,
        f"Find what input or output keeps tripping `{name}`; fix the agent behaviour, or the guardrail if it "
        "is a false positive.",
    )
