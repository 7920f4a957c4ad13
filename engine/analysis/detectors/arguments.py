"""Invalid or redundant tool arguments: unparseable JSON, JSON-schema violations, unknown parameters."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # jsonschema is imported on first use: most analyses never validate a schema
    from jsonschema import Draft202012Validator

from engine.analysis.detectors.base import Hit

DETECTOR_INVALID = "invalid_arguments"
DETECTOR_UNKNOWN = "unknown_parameter"
_VALIDATORS: dict[bytes, Draft202012Validator | None] = {}
_INDEX = re.compile(r"/\d+(?=/|$)")


def _validator(schema: dict[str, Any]) -> Draft202012Validator | None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    if key not in _VALIDATORS:
        try:
            Draft202012Validator.check_schema(schema)
            _VALIDATORS[key] = Draft202012Validator(schema)
        except SchemaError:
            _VALIDATORS[key] = None
        if len(_VALIDATORS) > 10_000:
            _VALIDATORS.clear()
    return _VALIDATORS[key]


def _violation_key(err: Any) -> str:
    path = _INDEX.sub("/*", "/" + "/".join(str(p) for p in err.absolute_path))
    if err.validator == "required":
        missing = err.message.split("'")[1] if err.message.count("'") >= 2 else "?"
        return f"missing `{missing}` at {path}"
    if err.validator == "additionalProperties":
        return f"unexpected property at {path}"
    return f"{err.validator} violated at {path}"


def detect(tool: str, arguments: str | None, schema: dict[str, Any] | None, span_id: str) -> list[Hit]:
    """Check one call's arguments; ``schema`` is the offered JSON schema when known."""
    if arguments is None or not arguments.strip():
        return []
    try:
        args = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return [
            Hit(
                DETECTOR_INVALID,
                f"{tool}\x1funparseable JSON",
                f"Unparseable JSON arguments to `{tool}`",
                "invalid_arguments",
                span_id,
                f"{tool}({arguments})",
                "Use structured outputs / strict function calling so arguments are always valid JSON.",
            )
        ]
    if not isinstance(schema, dict) or not schema:
        return []
    hits: list[Hit] = []
    props = schema.get("properties")
    if isinstance(args, dict) and isinstance(props, dict):
        for name in sorted(set(args) - set(props)):
            hits.append(
                Hit(
                    DETECTOR_UNKNOWN,
                    f"{tool}\x1f{name}",
                    f"Unknown parameter `{name}` passed to `{tool}`",
                    "redundant_argument",
                    span_id,
                    f"{tool}({arguments})",
                    f"Remove `{name}` from calls, or add it to `{tool}`'s schema if it is meant to be accepted.",
                )
            )
    validator = _validator(schema)
    if validator is None:
        return hits
    seen: set[str] = set()
    for err in sorted(validator.iter_errors(args), key=lambda e: (list(map(str, e.absolute_path)), e.validator)):
        if err.validator == "additionalProperties" and hits:
            continue  # already reported as unknown parameters
        k = _violation_key(err)
        if k in seen:
            continue
        seen.add(k)
        hits.append(
            Hit(
                DETECTOR_INVALID,
                f"{tool}\x1f{k}",
                f"Arguments to `{tool}` violate its schema: {k}",
                "invalid_arguments",
                span_id,
                f"{tool}({arguments}): {err.message}",
                f"Describe the `{tool}` parameters more precisely, or enable strict schema-constrained tool calls.",
            )
        )
    return hits
