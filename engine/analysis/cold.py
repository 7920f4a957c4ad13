"""A trace's scan state packed while the trace is not being read: ``freeze`` / ``thaw``, exact both ways.

At a million spans the ``TraceState`` of every trace stays alive until the per-run detectors
run at the end (a trace may go on anywhere in the input), ~450 MB of small objects: a
``ToolExec`` per tool span with its strings, agent and final-turn tuples, empty containers. A
trace the scanner has not touched for a while (``engine.traces.recent``) is frozen into a
``ColdState``: the test linkage stays readable, the tool calls, agents and final turn become
one msgpack string (msgspec, in C), and the other fields are kept only when they differ from
their defaults. Thawing rebuilds an equal ``TraceState``; ``tests/engine/analysis/test_cold_state.py``
checks the round trip field by field, including values msgpack cannot hold (kept unfrozen).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from engine.analysis.detectors.base import ToolExec, TraceState

_LINK = ("trace_id", "nodeid", "outcome")
_PACKED = ("tools", "agents", "final_turn")
_FIELDS = tuple(f.name for f in dataclasses.fields(TraceState))
_REST = tuple(n for n in _FIELDS if n not in _LINK and n not in _PACKED)
_REST_DEFAULTS = tuple(
    f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
    for f in dataclasses.fields(TraceState)
    if f.name in _REST
)
_PACKED_EMPTY: tuple[list[ToolExec], list[tuple[str, str, str]], None] = ([], [], None)

_ENCODER = msgspec.msgpack.Encoder()
_BUFFER = bytearray()
_DECODER = msgspec.msgpack.Decoder(
    tuple[list[ToolExec], list[tuple[str, str, str]], tuple[str, str, str | None, int, bool] | None]
)
_RAW_DECODER = msgspec.msgpack.Decoder()


class ColdState:
    """A frozen ``TraceState``: its test linkage as attributes (what the run table reads), the rest packed."""

    __slots__ = ("trace_id", "nodeid", "outcome", "packed", "rest")

    def __init__(
        self, trace_id: str, nodeid: str | None, outcome: str | None, packed: bytes | None = None,
        rest: tuple[Any, ...] | None = None,
    ) -> None:
        self.trace_id = trace_id
        self.nodeid = nodeid
        self.outcome = outcome
        self.packed = packed
        self.rest = rest

    def __reduce__(self) -> tuple[type[ColdState], tuple[Any, ...]]:
        return ColdState, (self.trace_id, self.nodeid, self.outcome, self.packed, self.rest)


def freeze(st: TraceState) -> ColdState | None:
    """``st`` packed, or None when it cannot be packed exactly (extra attributes, values msgpack cannot hold)."""
    d = st.__dict__
    if len(d) != len(_FIELDS):  # something set an attribute TraceState does not declare: keep it as it is
        return None
    main = (st.tools, st.agents, st.final_turn)
    packed = None
    if main != _PACKED_EMPTY:
        try:  # into a reused buffer, then copied: ``encode`` leaves ~15 % of slack in each result
            _ENCODER.encode_into(main, _BUFFER)
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError):  # an int beyond 64 bits, a lone surrogate
            return None
        packed = bytes(_BUFFER)
    rest = tuple([d[n] for n in _REST])
    return ColdState(st.trace_id, st.nodeid, st.outcome, packed, None if rest == _REST_DEFAULTS else rest)


def thaw(cold: ColdState) -> TraceState:
    """The ``TraceState`` ``cold`` was frozen from (equal field by field)."""
    st = TraceState(cold.trace_id, cold.nodeid, cold.outcome)
    if cold.packed is not None:
        try:
            st.tools, st.agents, st.final_turn = _DECODER.decode(cold.packed)
        except msgspec.ValidationError:  # a value of another type than declared (only odd inputs): untyped
            tools, agents, final = _RAW_DECODER.decode(cold.packed)
            st.tools = [ToolExec(*t) for t in tools]
            st.agents = [tuple(a) for a in agents]
            st.final_turn = tuple(final) if final is not None else None  # type: ignore[assignment]
    if cold.rest is not None:
        d = st.__dict__
        for name, value in zip(_REST, cold.rest, strict=True):
            d[name] = value
    return st
