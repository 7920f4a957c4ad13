"""Redact secrets from trace text before it leaves the machine in a report or findings file.

Traces carry whatever the agent saw: API keys pasted in prompts, bearer headers in tool
arguments, credentials in connection strings. Excerpts are redacted on the way out.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # user:password@ in URLs (keep the user, drop the password)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+):[^\s@/]+@"), r"\1:" + REDACTED + "@"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), "Bearer " + REDACTED),
    (re.compile(r"\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), REDACTED),
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"), REDACTED),
    (re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), REDACTED),
    # key=value / "key": "value" for obviously secret keys
    (
        re.compile(
            r"(?i)([\"']?\b(?:api[_-]?key|secret(?:[_-]?key)?|password|passwd|pwd|access[_-]?token|auth[_-]?token|"
            r"aws_secret_access_key|client[_-]?secret)\b[\"']?\s*[:=]\s*[\"']?)([^\s\"',;}]{3,})"
        ),
        r"\1" + REDACTED,
    ),
]


def redact(text: str | None) -> str:
    """Return ``text`` with known secret shapes replaced by ``[REDACTED]``."""
    if not text:
        return ""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def excerpt(text: str | None, limit: int) -> str:
    """Redact, then cap to ``limit`` characters (redacting first so a cap never splits a secret open)."""
    out = redact(text)
    if len(out) > limit:
        out = out[: limit - 1].rstrip() + "…"
    return out


_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_control(text: str) -> str:
    """Drop terminal escape sequences and control characters (tab and newline stay)."""
    return _CONTROL.sub("", text)


def clean(text: object) -> str:
    """What every publisher applies to trace text: secrets redacted, control characters stripped."""
    return strip_control(redact(str(text) if text is not None else ""))
