"""Handoff ping-pong: control bounces A→B→A→B between two agents without progress."""

from __future__ import annotations

from engine.analysis.detectors.base import Hit

DETECTOR = "handoff_ping_pong"


def detect(agents: list[tuple[str, str, str]]) -> list[Hit]:
    """``agents`` = (start time, span_id, agent) in any order; one hit per bouncing pair."""
    seq: list[tuple[str, str]] = []
    for _, span_id, agent in sorted(agents):
        if not seq or seq[-1][0] != agent:
            seq.append((agent, span_id))
    pairs: dict[str, str] = {}
    for i in range(len(seq) - 3):
        a, b = seq[i][0], seq[i + 1][0]
        if a != b and seq[i + 2][0] == a and seq[i + 3][0] == b:
            pair = " <-> ".join(sorted((a, b)))
            pairs.setdefault(pair, seq[i + 3][1])
    return [
        Hit(
            DETECTOR,
            pair,
            f"Handoff ping-pong between agents {pair}",
            "handoff_loop",
            span_id,
            " -> ".join(a for a, _ in seq[:12]),
            "Give each agent a clear ownership rule and forbid handing back without new information.",
        )
        for pair, span_id in sorted(pairs.items())
    ]
