"""The one way to write a detector: an object with a ``name`` and ``on_span`` and/or ``on_run``.

``on_span(span, run)`` sees each span's normalized view (``engine.traces.normalize.NormalizedSpan``:
category, tool name/arguments/result, output text, error, agent, test linkage) and ``on_run(run)``
sees a run once all its spans were read (``engine.analysis.detectors.base.TraceState``: the tool
calls in order, agents, the final LLM turn, the test and its outcome). Both return ``Hit``s (or
nothing); a hit's ``detector`` + ``key`` is the failure mode, and the analysis decides whether it
is systemic exactly as for the built-in detectors.

A detector is checked once, when registered (``check_detector``); its hooks are bound then, never
looked up per span. Detectors with ``on_span`` make the scan normalize every span (the built-ins
normalize only the few spans that can matter), so a pure ``on_run`` detector is the cheap kind.
A detector that raises is switched off for the rest of the analysis and costs one note.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from engine.analysis.detectors.base import Hit, ToolExec, TraceState
from engine.traces.normalize import NormalizedSpan, normalize
from engine.traces.span import Span

__all__ = [
    "Detector",
    "DetectorSet",
    "Hit",
    "NormalizedSpan",
    "RunDetector",
    "SpanDetector",
    "ToolExec",
    "TraceState",
    "check_detector",
]

SpanHook = Callable[[NormalizedSpan, TraceState], "Iterable[Hit] | None"]
RunHook = Callable[[TraceState], "Iterable[Hit] | None"]


@runtime_checkable
class Detector(Protocol):
    """Anything with a string ``name``; it must also have ``on_span`` or ``on_run`` (checked at registration)."""

    name: str


@runtime_checkable
class SpanDetector(Protocol):
    name: str

    def on_span(self, span: NormalizedSpan, run: TraceState) -> Iterable[Hit] | None: ...


@runtime_checkable
class RunDetector(Protocol):
    name: str

    def on_run(self, run: TraceState) -> Iterable[Hit] | None: ...


def check_detector(obj: object) -> Detector:
    """Refuse at registration an object that is not a detector (one line saying what is missing)."""
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"{type(obj).__name__} is not a detector: it needs a non-empty str `name`")
    if not (isinstance(obj, SpanDetector) and callable(obj.on_span)) and not (
        isinstance(obj, RunDetector) and callable(obj.on_run)
    ):
        raise TypeError(f"detector {name!r} ({type(obj).__name__}) needs `on_span(span, run)` or `on_run(run)`")
    return obj  # type: ignore[return-value]


@dataclass
class DetectorSet:
    """Registered detectors with their hooks bound once; what the scanner calls.

    ``errors`` holds one line per detector that raised (it is off from then on) or returned
    something that is not a ``Hit``.
    """

    detectors: list[Detector] = field(default_factory=list)
    span_hooks: list[tuple[str, SpanHook]] = field(default_factory=list)
    run_hooks: list[tuple[str, RunHook]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, detectors: Iterable[object]) -> DetectorSet:
        """User detectors, checked; a name taken by another detector or a built-in is refused (its notes would be ambiguous)."""
        from engine.analysis.detectors.builtin import BUILTIN_NAMES  # builtin.py builds on this module

        out = cls()
        names: set[str] = set()
        for obj in detectors:
            d = check_detector(obj)
            if d.name in names:
                raise ValueError(f"two detectors are named {d.name!r}")
            if d.name in BUILTIN_NAMES:
                raise ValueError(f"detector name {d.name!r} is a built-in detector's: choose another")
            names.add(d.name)
            out.detectors.append(d)
            if isinstance(d, SpanDetector) and callable(d.on_span):
                out.span_hooks.append((d.name, d.on_span))
            if isinstance(d, RunDetector) and callable(d.on_run):
                out.run_hooks.append((d.name, d.on_run))
        return out

    def __bool__(self) -> bool:
        return bool(self.detectors)

    def _collect(self, name: str, got: Iterable[Hit] | None, into: list[Hit]) -> None:
        if got is None:
            return
        for h in got:
            if not isinstance(h, Hit) or not isinstance(h.key, str) or not isinstance(h.title, str):
                self.errors.setdefault(name, f"detector {name} returned {type(h).__name__}, not a Hit: ignored")
                continue
            if not h.detector:
                h.detector = name
            into.append(h)

    def _failed(self, name: str, exc: BaseException) -> None:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        self.errors[name] = f"detector {name} failed and was switched off: {type(exc).__name__}: {first}"
        self.span_hooks = [(n, h) for n, h in self.span_hooks if n != name]
        self.run_hooks = [(n, h) for n, h in self.run_hooks if n != name]

    def on_span(self, ns: NormalizedSpan, st: TraceState) -> None:
        for name, hook in self.span_hooks:
            try:
                self._collect(name, hook(ns, st), st.hits)
            except Exception as exc:  # noqa: BLE001 - a user's detector never sinks the analysis
                self._failed(name, exc)

    def on_run(self, st: TraceState, hits: list[Hit]) -> None:
        for name, hook in self.run_hooks:
            try:
                self._collect(name, hook(st), hits)
            except Exception as exc:  # noqa: BLE001
                self._failed(name, exc)

    def observe(self, spans: Iterable[Span], states: Sequence[TraceState], index: dict[str, int]) -> Iterator[Span]:
        """Pass ``spans`` through to the scanner, then show each one to the span hooks.

        A span is handed on first and observed when the scanner asks for the next one: by then the
        scanner has filed it under its run, so the hooks see the same ``TraceState`` the run hooks will.
        """
        for span in spans:
            yield span
            if self.span_hooks:
                i = index.get(span.get("trace_id"))  # type: ignore[arg-type]
                if i is not None:
                    self.on_span(normalize(span), states[i])

    def notes(self) -> list[str]:
        return list(self.errors.values())


def as_detector_set(detectors: DetectorSet | Iterable[Any] | None) -> DetectorSet:
    if detectors is None:
        return DetectorSet()
    return detectors if isinstance(detectors, DetectorSet) else DetectorSet.of(detectors)
