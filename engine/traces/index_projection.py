"""The index scan's typed partial decode: only the fields ``canonical_reader.scan`` reads, as msgspec Structs.

Why: ``orjson.loads`` builds a dict per span with every attribute (message blobs, flattened
OpenInference projections...) only for the index to read a dozen keys. Decoding into the Structs
below skips every undeclared value without creating Python objects (~0.6x an ``orjson.loads``).

The attribute keys are not spelled out here but taken from ``normalize``'s tables (``MODEL_KEYS``,
``INPUT_TOKEN_KEYS``...) plus the keys ``normalize.category_of`` tests; each becomes a field named
after its key (``llm.model_name`` -> ``llm_model_name``). ``rollup_of`` is the Struct twin of
``normalize.rollup`` (a parity test runs both over real corpora); both it and ``quick_rollup``
(the same over ``PrimaryAttrs``, the 18 keys that settle most spans: the scan decodes those first)
are generated from the tables. The keys ``category_of`` tests are listed here by hand
(``CATEGORY_*_KEYS``, in its order): a change there needs the same change here, which the
per-key parity test catches for the keys it knows. Absent keys keep the ``ABSENT``
default where ``rollup`` tests a key's presence, so "present with null" and "missing" stay distinct
there as in the dict version; other absent keys are None, what ``dict.get`` gives.

Fields are typed strictly: a value of another type raises ``msgspec.ValidationError`` and the
scan takes its orjson path for that line, so odd records get exactly the old treatment. msgspec
accepts two things orjson refuses: invalid UTF-8 inside skipped values (``valid_utf8`` guards)
and numbers beyond the float range inside skipped values (not guarded: such a line is indexed
instead of being counted ``malformed_json``; documented in benchmarks/README). Declared integers
are bounded to int64 (orjson reads bigger ones as floats): those lines fall back too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from engine.traces import conventions, normalize
from engine.traces.normalize import (
    AGENT_NAME_KEYS,
    INPUT_TOKEN_KEYS,
    LANGFUSE_USAGE,
    MODEL_KEYS,
    OUTPUT_TOKEN_KEYS,
    TOOL_NAME_KEYS,
)


class _Absent:
    """The default of every declared attribute: the key was not in the line."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()

# Keys ``normalize.category_of`` reads (by value, then by presence), in its order.
CATEGORY_VALUE_KEYS = (
    "openinference.span.kind",
    "openai_agents.span_type",
    "gen_ai.operation.name",
    "traceloop.span.kind",
    "langfuse.observation.type",
)
CATEGORY_PRESENCE_KEYS = (
    "gen_ai.tool.name",
    "tool.name",
    "gen_ai.request.model",
    "llm.model_name",
    "gen_ai.system",
    "llm.request.type",
    "gen_ai.agent.name",
    "agent.name",
)
INT64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Num = INT64 | float | str | bool | None  # what ``normalize._first_int`` can use; lists/dicts fall back
_Str = str | None

ATTR_KEYS: tuple[str, ...] = tuple(
    dict.fromkeys(
        CATEGORY_VALUE_KEYS
        + CATEGORY_PRESENCE_KEYS
        + MODEL_KEYS
        + INPUT_TOKEN_KEYS
        + OUTPUT_TOKEN_KEYS
        + TOOL_NAME_KEYS
        + AGENT_NAME_KEYS
        + (LANGFUSE_USAGE, conventions.TEST_NODEID, conventions.TEST_OUTCOME)
    )
)
_NUMERIC = frozenset(INPUT_TOKEN_KEYS + OUTPUT_TOKEN_KEYS)


def field_name(key: str) -> str:
    """The Struct field of an attribute key: ``gen_ai.usage.input_tokens`` -> ``gen_ai_usage_input_tokens``."""
    return key.replace(".", "_")


def _default(key: str) -> Any:
    """ABSENT where ``rollup`` tests the key's presence (``k in attrs``), else None (what ``.get`` gives)."""
    return ABSENT if key in CATEGORY_PRESENCE_KEYS or key == LANGFUSE_USAGE else None


assert len({field_name(k) for k in ATTR_KEYS}) == len(ATTR_KEYS), "attribute field names collide"

# The few keys that settle the rollup of most spans: the OpenInference kind, the first key of each
# table, every token key (a span without tokens must be known to have none) and the presence keys
# ``rollup`` tests once the category is known. Each declared key costs the decoder a comparison per
# attribute of every line, so the scan decodes these first and the full set only when they do not
# settle it (``quick_rollup`` returns None).
PRIMARY_KEYS: tuple[str, ...] = tuple(
    dict.fromkeys(
        (CATEGORY_VALUE_KEYS[0], "llm.model_name", MODEL_KEYS[0])
        + INPUT_TOKEN_KEYS
        + OUTPUT_TOKEN_KEYS
        + (LANGFUSE_USAGE, TOOL_NAME_KEYS[0], AGENT_NAME_KEYS[0], conventions.TEST_NODEID, conventions.TEST_OUTCOME)
    )
)


def _attrs_struct(name: str, keys: tuple[str, ...]) -> Any:
    fields = [(field_name(k), _Num if k in _NUMERIC else _Str, msgspec.field(default=_default(k), name=k)) for k in keys]
    return msgspec.defstruct(name, fields, gc=False, module=__name__)


Attrs: Any = _attrs_struct("Attrs", ATTR_KEYS)
PrimaryAttrs: Any = _attrs_struct("PrimaryAttrs", PRIMARY_KEYS)


class ResourceAttrs(msgspec.Struct, gc=False):
    service_name: _Str = msgspec.field(default=None, name="service.name")


class Resource(msgspec.Struct, gc=False):
    attributes: ResourceAttrs


class Status(msgspec.Struct, gc=False):
    code: Literal["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]


class _SpanTop(msgspec.Struct, gc=False):
    """The top-level fields the index reads; all required, so a record missing one takes the orjson path.

    Lengths and enums are checked here (in conventions); ``canonical_reader.scan`` checks the rest. The
    constraints are never looser than the orjson path's checks (``_dict_line``), so a line either
    passes both or gets the orjson path's verdict.
    """

    trace_id: Annotated[str, msgspec.Meta(min_length=32, max_length=32)]
    span_id: Annotated[str, msgspec.Meta(min_length=16, max_length=16)]
    parent_span_id: _Str
    name: str
    kind: Literal[
        "SPAN_KIND_UNSPECIFIED",
        "SPAN_KIND_INTERNAL",
        "SPAN_KIND_SERVER",
        "SPAN_KIND_CLIENT",
        "SPAN_KIND_PRODUCER",
        "SPAN_KIND_CONSUMER",
    ]
    start_time: Annotated[str, msgspec.Meta(min_length=30, max_length=30)]
    end_time: Annotated[str, msgspec.Meta(min_length=30, max_length=30)]
    status: Status
    resource: Resource


class SpanView(_SpanTop, gc=False):
    attributes: Attrs


class PrimaryView(_SpanTop, gc=False):
    attributes: PrimaryAttrs


decode = msgspec.json.Decoder(SpanView).decode
decode_primary = msgspec.json.Decoder(PrimaryView).decode
# what a line that does not fit raises: DecodeError/ValidationError/UnicodeDecodeError are ValueErrors,
# deep nesting is a RecursionError
DECODE_ERRORS = (ValueError, RecursionError)


def valid_utf8(line: bytes) -> bool:
    """orjson refuses invalid UTF-8 anywhere in a line; msgspec checks only the values it decodes."""
    if line.isascii():
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_OI, _SDK, _OP, _TL, _LF = (
    normalize.OI_KIND_TO_CATEGORY,
    normalize.AGENTS_SDK_TYPE_TO_CATEGORY,
    normalize.GENAI_OP_TO_CATEGORY,
    normalize.TRACELOOP_KIND_TO_CATEGORY,
    normalize.LANGFUSE_TYPE_TO_CATEGORY,
)


def _name_category(name: str) -> str:
    """When no attribute speaks, ``category_of`` decides by the span name."""
    return normalize.category_of({}, name)


def _is_str(key: str) -> str:
    """Source for "the key's value is a non-empty str" (``_first_str``'s test) of field ``a.<key>``."""
    f = f"a.{field_name(key)}"
    return f"({f}.__class__ is str and {f})" if _default(key) is ABSENT else f


def _first_str_src(var: str, keys: tuple[str, ...]) -> list[str]:
    """``var = normalize._first_str(attrs, keys)`` unrolled into an if/elif chain."""
    out = [f"{'if' if i == 0 else 'elif'} {_is_str(k)}: {var} = a.{field_name(k)}" for i, k in enumerate(keys)]
    return [*out, f"else: {var} = None"]


def _first_int_src(var: str, keys: tuple[str, ...]) -> list[str]:
    """``var = normalize._first_int(attrs, keys) or 0`` unrolled (values are int, float, str, bool or None).

    "None of the keys" (most spans that are not LLM calls) is tested first, in one plain chain.
    """
    none = " and ".join(f"a.{field_name(k)} is None" for k in keys)
    out = [f"if {none}: {var} = 0"]
    for k in keys:
        usable = f"(v := a.{field_name(k)}) is not None and v.__class__ is not bool and (v.__class__ is not str or v.isdigit())"
        out.append(f"elif {usable}: {var} = int(v) or 0")
    return [*out, f"else: {var} = 0"]


def _present(keys: tuple[str, ...]) -> str:
    return " or ".join(f"a.{field_name(k)} is not ABSENT" for k in keys)


def _rollup_source() -> str:
    """The source of ``rollup_of``: ``normalize.rollup`` unrolled over the Struct's fields.

    Generated from the key tables so adding a key to ``MODEL_KEYS`` (say) needs no edit here;
    straight-line code because a loop over the keys costs as much again as the decode saves.
    """
    oi, sdk, op, tl, lf = (f"a.{field_name(k)}" for k in CATEGORY_VALUE_KEYS)
    body = [
        f"if {oi} is not None and (cat := _OI.get({oi}.upper())): pass",
        f"elif {sdk} is not None and {sdk} in _SDK: cat = _SDK[{sdk}]",
        f"elif {op} is not None and {op} in _OP: cat = _OP[{op}]",
        f"elif {tl} is not None and {tl} in _TL: cat = _TL[{tl}]",
        f"elif {lf} is not None and {lf}.upper() in _LF: cat = _LF[{lf}.upper()]",
        f"elif {_present(CATEGORY_PRESENCE_KEYS[:2])}: cat = 'tool'",
        f"elif {_present(CATEGORY_PRESENCE_KEYS[2:6])}: cat = 'llm'",
        f"elif {_present(CATEGORY_PRESENCE_KEYS[6:])}: cat = 'agent'",
        "else: cat = _name_category(name)",
        f"if cat == 'llm' or a.{field_name('llm.model_name')} is not ABSENT:",
        *("    " + x for x in _first_str_src("model", MODEL_KEYS)),
        "else: model = None",
        *_first_int_src("tin", INPUT_TOKEN_KEYS),
        *_first_int_src("tout", OUTPUT_TOKEN_KEYS),
        f"if not (tin or tout) and a.{field_name(LANGFUSE_USAGE)} is not ABSENT:",
        f"    tin, tout = (x or 0 for x in langfuse_usage({{LANGFUSE_USAGE: a.{field_name(LANGFUSE_USAGE)}}}))",
        "if cat == 'tool':",
        *("    " + x for x in _first_str_src("tool", TOOL_NAME_KEYS)),
        "    if tool is None: tool = _tool_from_name(name)",
        "else: tool = None",
        *_first_str_src("agent", AGENT_NAME_KEYS),
        "if agent is None and cat == 'agent': agent = name or None",
        "return cat, model, tin, tout, tool, agent",
    ]
    return "def rollup_of(a, name):\n" + "".join(f"    {x}\n" for x in body)


def _quick_source() -> str:
    """The source of ``quick_rollup``: ``rollup_of`` over ``PrimaryAttrs``, or None when those keys do not settle it."""
    oi = f"a.{field_name(CATEGORY_VALUE_KEYS[0])}"
    model, tool, agent = MODEL_KEYS[0], TOOL_NAME_KEYS[0], AGENT_NAME_KEYS[0]
    body = [
        f"if {oi} is None: return None",
        f"cat = _OI.get({oi}) or _OI.get({oi}.upper())  # most producers already spell it upper-case",
        "if not cat: return None",
        f"if cat == 'llm' or a.{field_name('llm.model_name')} is not ABSENT:",
        f"    if not {_is_str(model)}: return None",
        f"    model = a.{field_name(model)}",
        "else: model = None",
        *_first_int_src("tin", INPUT_TOKEN_KEYS),
        *_first_int_src("tout", OUTPUT_TOKEN_KEYS),
        f"if not (tin or tout) and a.{field_name(LANGFUSE_USAGE)} is not ABSENT:",
        f"    tin, tout = (x or 0 for x in langfuse_usage({{LANGFUSE_USAGE: a.{field_name(LANGFUSE_USAGE)}}}))",
        "if cat == 'tool':",
        f"    if not {_is_str(tool)}: return None",
        f"    tool = a.{field_name(tool)}",
        "else: tool = None",
        f"if not {_is_str(agent)}: return None",
        f"return cat, model, tin, tout, tool, a.{field_name(agent)}",
    ]
    return "def quick_rollup(a, name):\n" + "".join(f"    {x}\n" for x in body)


ROLLUP_SOURCE = _rollup_source() + _quick_source()
_ns: dict[str, Any] = {
    "ABSENT": ABSENT,
    "_OI": _OI,
    "_SDK": _SDK,
    "_OP": _OP,
    "_TL": _TL,
    "_LF": _LF,
    "_name_category": _name_category,
    "langfuse_usage": normalize.langfuse_usage,
    "_tool_from_name": normalize.tool_name_from_span_name,
    "LANGFUSE_USAGE": LANGFUSE_USAGE,
}
exec(compile(ROLLUP_SOURCE, f"<{__name__}.rollup_of>", "exec"), _ns)
rollup_of: Callable[[Any, str], tuple[str, str | None, int, int, str | None, str | None]] = _ns["rollup_of"]
rollup_of.__doc__ = "``normalize.rollup`` without ``is_error`` over an ``Attrs``: (cat, model, tin, tout, tool, agent)."
quick_rollup: Callable[[Any, str], tuple[str, str | None, int, int, str | None, str | None] | None] = _ns[
    "quick_rollup"
]
quick_rollup.__doc__ = "``rollup_of`` over a ``PrimaryAttrs``; None when the full ``Attrs`` are needed."
