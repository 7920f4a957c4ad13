"""A typed *partial* decode of one canonical JSONL line: only the fields the hot loops read.

Why: at a million spans, ``orjson.loads`` builds a dict per span with every attribute (message
blobs, flattened OpenInference projections...) only for the scanner to read a dozen keys and free
the rest. ``msgspec`` decoding into the ``Struct``s below skips undeclared attributes without
creating Python objects, which costs about 0.6x an ``orjson.loads`` of the same line.

The attribute keys are not spelled here: they come from ``normalize``'s dialect tables
(``MODEL_KEYS``, ``TOOL_ARGS_KEYS``...) and ``conventions``, so there is one truth for dialects;
``covers`` lets a test assert every table is fully declared. Fields are typed strictly (``str``
where the slow path needs a ``str``): any value of another type raises ``msgspec.ValidationError``
and the caller falls back to ``orjson`` + ``canonicalize_record`` for that line, so odd records
keep their exact slow-path treatment. Presence-only keys (those that merely send a span to the
slow path) are ``msgspec.Raw`` — never decoded — with the shared empty ``ABSENT`` meaning "absent"
(a present ``Raw`` points into the input buffer, which ``lines.iter_views`` reuses: copy before keeping).

Two things msgspec accepts that orjson refuses, which callers must guard against themselves:
invalid UTF-8 inside skipped values (``engine.traces.lines.iter_views`` flags such lines) and
numbers beyond the float range inside skipped values (orjson rejects the line; documented, not
guarded — see benchmarks/README).
Integers in declared fields are bounded to int64 (orjson turns bigger ones into floats).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from engine.traces import conventions
from engine.traces.formats.common import SYNTHETIC_TIME
from engine.traces.normalize import (
    AGENT_NAME_KEYS,
    FINISH_REASON_KEYS,
    MODEL_KEYS,
    OUTPUT_TOKEN_KEYS,
    TOOL_ARGS_KEYS,
    TOOL_NAME_KEYS,
    TOOL_RESULT_KEYS,
)

OI_KIND = "openinference.span.kind"
OI_TEXT = "llm.output_messages.0.message.content"
ERROR_TYPE = "error.type"
LF_LEVEL = "langfuse.observation.level"
# Keys that make an OpenInference LLM span "not plain" (tools offered/requested, several outputs).
LLM_COMPLEX_KEYS = (
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
    "llm.tools.0.tool.json_schema",
    "llm.tools.0.tool.name",
    "llm.output_messages.1.message.content",
    "gen_ai.output.messages",
    "halo.tools",
)
ABSENT = msgspec.Raw()  # the default of presence-only fields: ``len(field) == 0`` means the key is absent

# within int64 (msgspec's bound limit); orjson reads up to 2**64-1 as int and beyond as float: those fall back
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Str = str | None
_Int = Int64 | None


def _f(key: str, default: Any = None) -> Any:
    return msgspec.field(default=default, name=key)


class Attrs(msgspec.Struct, gc=False):
    """Declared attributes; everything else in the line's ``attributes`` is skipped unallocated."""

    oi_kind: _Str = _f(OI_KIND)
    nodeid: _Str = _f(conventions.TEST_NODEID)
    outcome: _Str = _f(conventions.TEST_OUTCOME)
    # presence only: any of these sends the span to the slow path (or, synthetic time, skips latency)
    exit_status: msgspec.Raw = _f(conventions.RUN_EXIT_STATUS, ABSENT)
    error_type: msgspec.Raw = _f(ERROR_TYPE, ABSENT)
    lf_level: msgspec.Raw = _f(LF_LEVEL, ABSENT)
    synthetic_time: msgspec.Raw = _f(SYNTHETIC_TIME, ABSENT)
    llm_c0: msgspec.Raw = _f(LLM_COMPLEX_KEYS[0], ABSENT)
    llm_c1: msgspec.Raw = _f(LLM_COMPLEX_KEYS[1], ABSENT)
    llm_c2: msgspec.Raw = _f(LLM_COMPLEX_KEYS[2], ABSENT)
    llm_c3: msgspec.Raw = _f(LLM_COMPLEX_KEYS[3], ABSENT)
    llm_c4: msgspec.Raw = _f(LLM_COMPLEX_KEYS[4], ABSENT)
    llm_c5: msgspec.Raw = _f(LLM_COMPLEX_KEYS[5], ABSENT)
    # tools (the first name key only: spans without it take the slow path)
    tool_name: _Str = _f(TOOL_NAME_KEYS[0])
    args0: _Str = _f(TOOL_ARGS_KEYS[0])
    args1: _Str = _f(TOOL_ARGS_KEYS[1])
    args2: _Str = _f(TOOL_ARGS_KEYS[2])
    args3: _Str = _f(TOOL_ARGS_KEYS[3])
    args4: _Str = _f(TOOL_ARGS_KEYS[4])
    args5: _Str = _f(TOOL_ARGS_KEYS[5])
    result0: _Str = _f(TOOL_RESULT_KEYS[0])
    result1: _Str = _f(TOOL_RESULT_KEYS[1])
    result2: _Str = _f(TOOL_RESULT_KEYS[2])
    result3: _Str = _f(TOOL_RESULT_KEYS[3])
    result4: _Str = _f(TOOL_RESULT_KEYS[4])
    result5: _Str = _f(TOOL_RESULT_KEYS[5])
    # LLM calls
    text: _Str = _f(OI_TEXT)
    model0: _Str = _f(MODEL_KEYS[0])
    model1: _Str = _f(MODEL_KEYS[1])
    model2: _Str = _f(MODEL_KEYS[2])
    model3: _Str = _f(MODEL_KEYS[3])
    model4: _Str = _f(MODEL_KEYS[4])
    model5: _Str = _f(MODEL_KEYS[5])
    finish0: Any = _f(FINISH_REASON_KEYS[0])
    finish1: Any = _f(FINISH_REASON_KEYS[1])
    finish2: Any = _f(FINISH_REASON_KEYS[2])
    finish3: Any = _f(FINISH_REASON_KEYS[3])
    out_tokens0: _Int = _f(OUTPUT_TOKEN_KEYS[0])
    out_tokens1: _Int = _f(OUTPUT_TOKEN_KEYS[1])
    out_tokens2: _Int = _f(OUTPUT_TOKEN_KEYS[2])
    out_tokens3: _Int = _f(OUTPUT_TOKEN_KEYS[3])
    out_tokens4: _Int = _f(OUTPUT_TOKEN_KEYS[4])
    # agents
    agent0: _Str = _f(AGENT_NAME_KEYS[0])
    agent1: _Str = _f(AGENT_NAME_KEYS[1])
    agent2: _Str = _f(AGENT_NAME_KEYS[2])
    agent3: _Str = _f(AGENT_NAME_KEYS[3])


class Status(msgspec.Struct, gc=False):
    code: _Str = None


class SpanView(msgspec.Struct, gc=False):
    """The top-level fields the scanner indexes into; all required, so a record missing one falls back."""

    trace_id: str
    span_id: str
    name: str
    start_time: str
    end_time: str
    status: msgspec.Raw  # compared with ``PLAIN_STATUSES`` first; anything else goes through ``status_code``
    attributes: Attrs


DECODER = msgspec.json.Decoder(SpanView)
# The statuses canonical writers emit for non-errors, byte for byte: one comparison instead of a nested decode.
PLAIN_STATUSES = (
    msgspec.Raw(b'{"code":"STATUS_CODE_OK","message":""}'),
    msgspec.Raw(b'{"code":"STATUS_CODE_UNSET","message":""}'),
)
_STATUS = msgspec.json.Decoder(Status)


def status_code(raw: msgspec.Raw) -> str | None:
    """The ``code`` of a status object (raises ``DECODE_ERRORS`` when it is not an object with a string code)."""
    return _STATUS.decode(raw).code
# what a line that does not fit the projection raises (DecodeError/ValidationError are ValueErrors;
# so is UnicodeDecodeError from a declared string; deep nesting raises RecursionError)
DECODE_ERRORS = (ValueError, RecursionError)


def declared_keys() -> set[str]:
    """Every attribute key ``Attrs`` declares (its JSON names)."""
    return set(Attrs.__struct_encode_fields__)


def covers(keys: tuple[str, ...]) -> bool:
    """True when every key of a dialect table is declared (tests assert it for the tables the scanner reads)."""
    return set(keys) <= declared_keys()
