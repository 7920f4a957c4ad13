"""LLM call failures: API errors by class, truncated outputs, content filtering, empty final answers."""

from __future__ import annotations

import re

from engine.analysis.detectors.base import Hit

DETECTOR_API = "llm_api_error"
DETECTOR_TRUNCATED = "truncated_output"
DETECTOR_EMPTY = "empty_final_output"
TRUNCATION_REASONS = frozenset({"length", "max_tokens", "max_output_tokens", "model_length"})
_CLASSES: list[tuple[str, re.Pattern[str], str]] = [
    (
        "context length exceeded",
        re.compile(r"(?i)context[_ ]length|context window|maximum context|too many tokens|prompt is too long|"
                   r"reduce the length|input is too long|ContextWindowExceeded"),
        "Trim or summarise the conversation history and tool results before they reach the model.",
    ),
    (
        "rate limit",
        re.compile(r"(?i)rate[_ ]?limit|\b429\b|too many requests|quota|RESOURCE_EXHAUSTED"),
        "Add client-side backoff with jitter and lower concurrency; request a higher quota if persistent.",
    ),
    (
        "content filter",
        re.compile(r"(?i)content[_ ]?filter|content management policy|safety system|ResponsibleAIPolicy|"
                   r"content_policy"),
        "Review which inputs trigger the provider's filter; sanitise tool output fed back to the model.",
    ),
    (
        "timeout",
        re.compile(r"(?i)time[d ]?out|deadline exceeded|APITimeoutError|ReadTimeout"),
        "Raise the client timeout or stream responses; shorten prompts that take too long.",
    ),
    (
        "connection error",
        re.compile(r"(?i)APIConnectionError|connection (?:reset|refused|error|aborted)|ECONNRESET|"
                   r"name resolution|network"),
        "Retry transient connection errors with backoff.",
    ),
    (
        "server error",
        re.compile(r"(?i)\b5\d\d\b|overloaded|InternalServerError|service unavailable|bad gateway|server error"),
        "Retry with backoff, and fall back to another model when the provider is overloaded.",
    ),
    (
        "authentication error",
        re.compile(r"(?i)\b401\b|\b403\b|AuthenticationError|PermissionDenied|invalid api key|unauthori[sz]ed"),
        "Check the API key / credentials configured for the test environment.",
    ),
    (
        "bad request",
        re.compile(r"(?i)\b400\b|BadRequestError|invalid_request_error|UnprocessableEntity|\b422\b"),
        "Inspect the request the agent builds (tool schemas, message order, parameters) for invalid fields.",
    ),
]


_CACHE: dict[tuple[str | None, ...], tuple[str, str] | None] = {}


def api_error_class(*texts: str | None) -> tuple[str, str] | None:
    """(class, suggested fix) for an LLM error message/type, or None when unrecognised (memoized)."""
    if texts in _CACHE:
        return _CACHE[texts]
    found = None
    for text in texts:
        if not text:
            continue
        found = next(((name, fix) for name, pattern, fix in _CLASSES if pattern.search(text[:2000])), None)
        if found:
            break
    if len(_CACHE) > 10_000:
        _CACHE.clear()
    _CACHE[texts] = found
    return found


def api_hit(cls: str, fix: str, model: str | None, span_id: str, message: str) -> Hit:
    return Hit(
        DETECTOR_API,
        cls,
        f"LLM API failure: {cls}",
        "llm_api_failure",
        span_id,
        message,
        fix,
        ("models", model) if model else None,
    )


def truncated_hit(model: str | None, span_id: str, text: str | None) -> Hit:
    return Hit(
        DETECTOR_TRUNCATED,
        "length",
        "LLM output truncated at the token limit",
        "truncated_output",
        span_id,
        text or "(finish_reason=length)",
        "Raise max_tokens for this call or ask for shorter output (summaries, pagination).",
        ("models", model) if model else None,
    )


def empty_final_hit(span_id: str) -> Hit:
    return Hit(
        DETECTOR_EMPTY,
        "",
        "Run ends with an empty final answer",
        "empty_output",
        span_id,
        "(last LLM call returned no text and no tool calls)",
        "Make the agent always produce a final answer; check for stop sequences or tool-choice settings "
        "that end the turn silently.",
    )
