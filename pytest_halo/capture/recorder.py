"""The one sink every capture path writes through: stamps test linkage, caps values, writes.

A process has at most one active recorder (``current()``), so the manual API and the
SDK processors find it without plumbing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.traces import conventions as C
from pytest_halo.capture.test_context import TestContext
from pytest_halo.capture.writer import JsonlWriter, cap_attributes, value_limit_from_env

_CURRENT: Recorder | None = None


def current() -> Recorder | None:
    """The active recorder, or None when halo is not capturing in this process."""
    return _CURRENT


class Recorder:
    """Writes canonical span dicts to this process's part file, tagged with test and run."""

    def __init__(self, path: Path, run_id: str, worker: str, value_limit: int | None = None) -> None:
        self.writer = JsonlWriter(path)
        self.context = TestContext()
        self.run_id = run_id
        self.worker = worker
        self.value_limit = value_limit or value_limit_from_env()
        self._flushers: list[Any] = []

    def activate(self) -> None:
        global _CURRENT
        _CURRENT = self

    def deactivate(self) -> None:
        global _CURRENT
        if _CURRENT is self:
            _CURRENT = None

    def add_flusher(self, fn: Any) -> None:
        """Register a callable run on every ``flush`` (SDK processors holding spans)."""
        self._flushers.append(fn)

    def span_started(self, trace_id: str) -> None:
        self.context.claim(trace_id)

    def emit(self, span: dict[str, Any]) -> None:
        """Tag and write one canonical span (its ``attributes`` dict is modified in place)."""
        attrs = span["attributes"]
        linked = self.context.attribution(span["trace_id"])
        if linked is not None:
            attrs[C.TEST_NODEID] = linked[0]
            attrs[C.TEST_PHASE] = linked[1]
        attrs[C.TEST_WORKER] = self.worker
        attrs[C.RUN_ID] = self.run_id
        capped = cap_attributes(attrs, self.value_limit)
        if capped:
            attrs[C.TRUNCATED_KEYS] = capped
        self.writer.write(span)

    def flush(self) -> None:
        for fn in self._flushers:
            try:
                fn()
            except Exception:  # a user's processor must not break the test run
                pass
        self.writer.flush()

    def close(self) -> None:
        self.flush()
        self.writer.close()
        self.deactivate()
