"""Which test a span belongs to: the running test, or the test in which its trace began.

pytest runs one test at a time per process, so the "current test" is process-global.
Spans from background threads that outlive their test keep their test through their
trace: the first span of a trace seen while a test runs claims the trace for that test.
"""

from __future__ import annotations

from typing import Any

MAX_TRACES = 500_000


class TestContext:
    """Current nodeid/phase plus the trace → (nodeid, phase) claims.

    ``current`` is ``(nodeid, phase)`` while a test runs (one tuple per phase, so the
    recorder's hot path compares it by identity), else None.
    """

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.nodeid: str | None = None
        self._phase: str | None = None
        self.current: tuple[str, str] | None = None
        self.claims: dict[Any, tuple[str, str]] = {}

    @property
    def phase(self) -> str | None:
        return self._phase

    @phase.setter
    def phase(self, phase: str | None) -> None:
        self._phase = phase
        self.current = (self.nodeid, phase) if self.nodeid is not None and phase is not None else None

    def enter(self, nodeid: str, phase: str) -> None:
        self.nodeid = nodeid
        self.phase = phase

    def leave(self) -> None:
        self.nodeid = None
        self.phase = None

    def claim(self, trace_id: Any) -> None:
        """Called when a span starts: the running test (if any) claims an unclaimed trace."""
        nodeid = self.nodeid
        if nodeid is not None and trace_id not in self.claims:
            if len(self.claims) >= MAX_TRACES:
                self.claims.clear()
            self.claims[trace_id] = self.current or (nodeid, self._phase or "call")  # shared tuple: no GC object per trace

    def attribution(self, trace_id: Any) -> tuple[str, str] | None:
        """(nodeid, phase) for a finished span of ``trace_id``, or None outside any test."""
        got = self.claims.get(trace_id)
        nodeid, phase = self.nodeid, self._phase
        if got is not None:
            if got[0] == nodeid and phase is not None:
                return nodeid, phase
            return got
        if nodeid is None:
            return None
        self.claim(trace_id)
        return nodeid, phase or "call"
