"""Tool errors, grouped by tool and error template.

A tool "fails" when its span says so (status ERROR / ``error.type``) or when its result does:
tools often report failure in-band (``Error: ...``, ``{"error": ...}``, ``{"success": false}``)
and the agent reads it as data, so status alone misses most real tool failures.
"""

from __future__ import annotations

import re

import orjson

from engine.analysis.detectors.base import Hit
from engine.analysis.templates import first_line, template_of

DETECTOR = "tool_error"
_TEXT_ERROR = re.compile(
    r"^\s*(?:error|exception|traceback|fatal|failed|failure|unknown (?:tool|function|action))\b", re.I
)
_JSON_HINT = re.compile(
    r'"error"\s*:\s*(?!null|false|""|\{\}|\[\])|"(?:success|ok)"\s*:\s*false|"status"\s*:\s*"(?:error|failed|failure)"',
    re.I,
)
_NOT_FOUND_TOOL = re.compile(
    r"(?i)\b(?:unknown|invalid|unsupported)\s+(?:tool|function|action)\b"
    r"|\b(?:tool|function|action)\b[^.\n]{0,60}\b(?:not found|does not exist|doesn't exist|is not available|"
    r"not registered|is not a valid|no such)\b"
    r"|\bno (?:such )?(?:tool|function) (?:named|called)\b"
    r"|\bis not a valid (?:tool|function|action)\b"  # LangGraph ToolNode: "X is not a valid tool, try one of [...]"
)


def _json_error(result: str) -> str | None:
    """The error text a JSON result carries in-band, or None."""
    if not (result.startswith("{") and _JSON_HINT.search(result[:4000])):
        return None
    try:
        obj = orjson.loads(result)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if err:
        if isinstance(err, dict):
            err = err.get("message") or err.get("type") or err.get("code") or orjson.dumps(err).decode()
        return str(err)
    if obj.get("success") is False or obj.get("ok") is False or str(obj.get("status", "")).lower() in (
        "error",
        "failed",
        "failure",
    ):
        reason = obj.get("reason") or obj.get("message") or obj.get("detail")
        return str(reason) if reason else "reported failure (success=false)"
    return None


_ERR_FIRST = frozenset("EeTtFfUu")  # first letters of the words _TEXT_ERROR accepts


def result_error(result: str | None) -> str | None:
    """The error a tool reports in its result (``Error: ...``, ``{"error": ...}``, ``{"success": false}``), or None.

    Called for every tool span, so cheap character and substring checks gate the regexes and the JSON parse.
    """
    if not result:
        return None
    c = result[0]
    if c.isspace():
        result = result.strip()
        c = result[:1]
    if c in _ERR_FIRST:
        return first_line(result) if _TEXT_ERROR.match(result) else None
    if c == "{" and ('rror"' in result or "alse" in result or 'tatus"' in result):  # keys "error"/"status", false
        return _json_error(result.strip())
    return None


# What a framework wraps every tool error in (the OpenAI Agents SDK's span status: "Error running tool
# (non-fatal): <the tool's message>"). It says nothing a title "Tool `x` fails:" does not, and it ate most
# of the terminal's title width, so titles drop it; the key (and so the mode id) keeps the whole template.
_BOILERPLATE = re.compile(r"^Error running tool(?: \(non-fatal\)| `?[\w.-]+`?)?:\s+")


def headline(template: str) -> str:
    """An error template without its framework boilerplate prefix, for titles (never for keys)."""
    rest = _BOILERPLATE.sub("", template, count=1)
    return rest if re.search(r"[A-Za-z]", rest.replace("<*>", "")) else template


def is_unknown_tool_error(message: str) -> bool:
    """Does an error say the called tool does not exist (a hallucinated tool)?"""
    return bool(_NOT_FOUND_TOOL.search(message))


def detect(tool: str, arguments: str | None, span_id: str, message: str) -> Hit:
    """Build the tool-error hit for a failed tool call."""
    tmpl = template_of(message) or "error"
    return Hit(
        detector=DETECTOR,
        key=f"{tool}\x1f{tmpl}",
        title=f"Tool `{tool}` fails: {headline(tmpl)}",
        category="tool_error",
        span_id=span_id,
        example=f"{message}\n\ncalled as: {tool}({arguments or ''})",
        suggested_fix=(
            f"Check the precondition behind this `{tool}` error and state it in the tool's description or "
            "the system prompt, or validate the arguments before calling; if the input was valid, fix the tool."
        ),
    )
