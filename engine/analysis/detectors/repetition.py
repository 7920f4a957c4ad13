"""Repeated identical tool calls and retry loops within one run.

Identical = same tool and same arguments after canonical JSON (key order and whitespace do not
matter). A retry loop = ``retry_min`` or more consecutive calls of one tool, each made right
after the previous one failed: the agent keeps hammering instead of changing course.
"""

from __future__ import annotations

from collections import defaultdict

import orjson

from engine.analysis.detectors.base import Hit, ToolExec

DETECTOR_REPEAT = "repeated_call"
DETECTOR_RETRY = "retry_loop"


def canonical_args(arguments: str | None) -> str:
    if not arguments:
        return ""
    try:
        return orjson.dumps(orjson.loads(arguments), option=orjson.OPT_SORT_KEYS).decode()
    except (orjson.JSONDecodeError, TypeError):
        return " ".join(arguments.split())


def detect_repeats(calls: list[ToolExec], repeat_min: int) -> list[Hit]:
    """One hit per tool that was called with identical arguments ``repeat_min``+ times.

    Calls are bucketed by tool and argument length without spaces and newlines first (equal
    arguments have equal such lengths whatever the key order or spacing — models vary both within
    one run), so only plausible duplicates pay for JSON canonicalization; this runs for every run,
    over every tool call.
    """
    buckets: dict[tuple[str, int], list[ToolExec]] = defaultdict(list)
    for c in calls:
        a = c.arguments or ""
        buckets[(c.tool, len(a) - a.count(" ") - a.count("\n"))].append(c)
    worst: dict[str, list[ToolExec]] = {}
    for (tool, _), bucket in buckets.items():
        if len(bucket) < repeat_min:
            continue
        groups: dict[str, list[ToolExec]] = defaultdict(list)
        for c in bucket:
            groups[canonical_args(c.arguments)].append(c)
        for group in groups.values():
            if len(group) >= repeat_min and len(group) > len(worst.get(tool, [])):
                worst[tool] = group
    hits = []
    for tool in sorted(worst):
        group = worst[tool]
        hits.append(
            Hit(
                DETECTOR_REPEAT,
                tool,
                f"Repeated identical calls to `{tool}`",
                "repeated_call",
                group[1].span_id,
                f"{len(group)}x {tool}({group[0].arguments or ''})",
                f"Have the agent reuse `{tool}`'s earlier result (keep it in context or cache it) instead of "
                "calling again with the same arguments.",
            )
        )
    return hits


def detect_retry_loops(calls: list[ToolExec], retry_min: int) -> list[Hit]:
    """One hit per tool with a run of ``retry_min``+ back-to-back calls where each earlier call failed."""
    found: dict[str, tuple[int, ToolExec, ToolExec]] = {}
    i = 0
    while i < len(calls):
        j = i
        while j + 1 < len(calls) and calls[j + 1].tool == calls[i].tool and calls[j].is_error:
            j += 1
        length = j - i + 1
        if length >= retry_min and length > found.get(calls[i].tool, (0,))[0]:
            found[calls[i].tool] = (length, calls[i], calls[j])
        i = j + 1
    hits = []
    for tool in sorted(found):
        length, first, last = found[tool]
        hits.append(
            Hit(
                DETECTOR_RETRY,
                tool,
                f"Retry loop on failing tool `{tool}`",
                "retry_loop",
                last.span_id,
                f"{length} consecutive calls to {tool} after errors; first error: {first.template}",
                f"Cap retries of `{tool}` and make the agent change its arguments or ask the user after a failure.",
            )
        )
    return hits
