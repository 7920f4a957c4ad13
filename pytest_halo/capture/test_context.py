"""Which test a span belongs to: the running test, or the test in which its trace began.

pytest runs one test at a time per process, so the "current test" is process-global.
Spans from background threads that outlive their test keep their test through their
trace: the first span of a trace seen while a test runs claims the trace for that test.

A thread started during a test's call phase (or work submitted to a thread pool then)
belongs to that test even when its first span starts after the next test began: the
owning nodeid travels in the ``OWNER`` context variable, which ``capture.threads`` carries
into new threads and pool work items. Threads started outside the call phase (session
fixtures, servers) have no owner and are credited to whichever test is running.
"""

from __future__ import annotations

import contextvars
from typing import Any

MAX_TRACES = 500_000
OWNER: contextvars.ContextVar[str | None] = contextvars.ContextVar("halo_test_owner", default=None)


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
        self._owned: dict[str, tuple[str, str]] = {}  # nodeid -> (nodeid, "call"), shared per owner

    def own_work(self) -> contextvars.Token[str | None]:
        """From now on threads and pool work started here belong to the running test."""
        return OWNER.set(self.nodeid)

    @staticmethod
    def release_work(token: contextvars.Token[str | None]) -> None:
        OWNER.reset(token)

    def _owner_link(self) -> tuple[str, str] | None:
        """(owner, "call") when this code runs for a test other than the running one, else None."""
        owner = OWNER.get()
        if owner is None or owner == self.nodeid:
            return None
        got = self._owned.get(owner)
        if got is None:
            if len(self._owned) > 100_000:
                self._owned.clear()
            got = self._owned[owner] = (owner, "call")
        return got

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
        if trace_id in self.claims:
            return
        link = self._owner_link()
        if link is None:
            nodeid = self.nodeid
            if nodeid is None:
                return
            link = self.current or (nodeid, self._phase or "call")  # shared tuple: no GC object per trace
        if len(self.claims) >= MAX_TRACES:
            self.claims.clear()
        self.claims[trace_id] = link

    def attribution(self, trace_id: Any) -> tuple[str, str] | None:
        """(nodeid, phase) for a finished span of ``trace_id``, or None outside any test."""
        got = self.claims.get(trace_id)
        nodeid, phase = self.nodeid, self._phase
        if got is not None:
            if got[0] == nodeid and phase is not None:
                return nodeid, phase
            return got
        link = self._owner_link()
        if link is not None:
            self.claims[trace_id] = link
            return link
        if nodeid is None:
            return None
        self.claim(trace_id)
        return nodeid, phase or "call"
