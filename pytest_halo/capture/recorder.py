"""The one sink every capture path writes through: stamps test linkage, caps values, writes.

Spans of a running test are held in memory until the test's outcome is known (the end of
its protocol, in the process that ran it), then written already stamped with
``halo.test.outcome``. So the part file is final as written and the controller's merge is
a concatenation, not a JSON round trip per span. Spans of a test that already finished
(background threads) are stamped and written at once; spans outside any test are written
at once without an outcome. A crashed process loses only its in-flight test's spans.

Next to each part file the recorder writes ``<part>.index.json``: per test, its trace ids
and span count (tests.jsonl needs them; the merge need not scan the spans).

A process has at most one active recorder (``current()``), so the manual API and the SDK
processors find it without plumbing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson

from engine.traces import conventions as C
from pytest_halo.capture.test_context import TestContext
from pytest_halo.capture.writer import JsonlWriter, cap_attributes, value_limit_from_env

_CURRENT: Recorder | None = None


def current() -> Recorder | None:
    """The active recorder, or None when halo is not capturing in this process."""
    return _CURRENT


def index_path(part: Path) -> Path:
    return part.with_name(part.name + ".index.json")


class Recorder:
    """Writes canonical span dicts to this process's part file, tagged with test, run and outcome."""

    def __init__(self, path: Path, run_id: str, worker: str, value_limit: int | None = None) -> None:
        self.writer = JsonlWriter(path)
        self.context = TestContext()
        self.run_id = run_id
        self.worker = worker
        self.value_limit = value_limit or value_limit_from_env()
        self._flushers: list[Any] = []
        self._lock = threading.Lock()
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._outcomes: dict[str, str] = {}
        self._index: dict[str, dict[str, Any]] = {}  # nodeid -> {"trace_ids": {tid: None}, "spans": n}
        self._traces: set[str] = set()

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

    def span_started(self, trace_key: Any) -> None:
        """A span of trace ``trace_key`` started (any hashable key, used consistently per source)."""
        self.context.claim(trace_key)

    def _indexed(self, nodeid: str, span: dict[str, Any]) -> None:
        entry = self._index.get(nodeid)
        if entry is None:
            entry = self._index[nodeid] = {"trace_ids": {}, "spans": 0}
        entry["trace_ids"][span["trace_id"]] = None
        entry["spans"] += 1

    def emit(self, span: dict[str, Any], trace_key: Any = None) -> None:
        """Tag, cap and write (or hold until its test ends) one canonical span; ``attributes`` is modified."""
        attrs = span["attributes"]
        self._traces.add(span["trace_id"])
        linked = self.context.attribution(span["trace_id"] if trace_key is None else trace_key)
        attrs[C.TEST_WORKER] = self.worker
        attrs[C.RUN_ID] = self.run_id
        capped = cap_attributes(attrs, self.value_limit)
        if capped:
            attrs[C.TRUNCATED_KEYS] = capped
        if linked is None:
            attrs.pop(C.TEST_NODEID, None)
            self.writer.write(span)
            return
        nodeid = linked[0]
        attrs[C.TEST_NODEID] = nodeid
        attrs[C.TEST_PHASE] = linked[1]
        with self._lock:
            outcome = self._outcomes.get(nodeid)
            if outcome is None:
                self._pending.setdefault(nodeid, []).append(span)
                return
            self._indexed(nodeid, span)
        attrs[C.TEST_OUTCOME] = outcome
        self.writer.write(span)

    def test_finished(self, nodeid: str, outcome: str | None) -> None:
        """The test's protocol is over: stamp its held spans with ``outcome`` and write them."""
        with self._lock:
            if outcome:
                self._outcomes[nodeid] = outcome
            spans = self._pending.pop(nodeid, [])
            for span in spans:
                self._indexed(nodeid, span)
        for span in spans:
            if outcome:
                span["attributes"][C.TEST_OUTCOME] = outcome
            self.writer.write(span)
        self.flush()

    def flush(self) -> None:
        for fn in self._flushers:
            try:
                fn()
            except Exception:  # a user's processor must not break the test run
                pass
        self.writer.flush()

    def close(self) -> None:
        """Write what is still held (tests that never finished: no outcome), the index, and close."""
        with self._lock:
            held = list(self._pending)
        for nodeid in held:
            self.test_finished(nodeid, None)
        self.flush()
        count = self.writer.count
        self.writer.close()
        if count or self._index:
            payload = {"spans": count, "traces": sorted(self._traces), "tests": {k: {"trace_ids": list(v["trace_ids"]), "spans": v["spans"]}
                                                 for k, v in self._index.items()}}
            index_path(self.writer.path).write_bytes(orjson.dumps(payload))
        self.deactivate()
