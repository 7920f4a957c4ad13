"""Thread-safe JSONL writer and attribute caps.

Spans arrive from any thread (OTel/Agents SDK callbacks in background threads), so one
lock guards a buffered binary file; serialisation happens outside the lock.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from engine.traces import conventions

DEFAULT_VALUE_LIMIT = 64 * 1024
_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def value_limit_from_env() -> int:
    """``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` when set to a positive int, else halo's 64 KiB default."""
    raw = os.environ.get("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return DEFAULT_VALUE_LIMIT


def cap_attributes(attrs: dict[str, Any], limit: int) -> list[str]:
    """Truncate over-long string values (and strings inside sequences) in place; return the capped keys."""
    capped: list[str] = []
    for key, value in attrs.items():
        t = type(value)
        if t is str:
            if len(value) > limit:
                attrs[key] = value[:limit]
                capped.append(key)
        elif (t is list or t is tuple) and value:
            if any(isinstance(v, str) and len(v) > limit for v in value):
                attrs[key] = [v[:limit] if isinstance(v, str) else v for v in value]
                capped.append(key)
    return capped


def capped_body(attrs: Any, body: bytes, limit: int) -> bytes:
    """``body`` (the serialised ``attrs``) re-serialised from a capped copy when a value is over ``limit``.

    Capped keys are listed under ``halo.truncated_attributes``; ``attrs`` is never modified.
    """
    capped = dict(attrs)
    keys = cap_attributes(capped, limit)
    if not keys:
        return body
    capped[conventions.TRUNCATED_KEYS] = keys
    return dumps_compact(capped)


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)


def dumps_compact(obj: Any) -> bytes:
    """JSON without the newline (same fallbacks as ``dumps_line``)."""
    try:
        return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(obj, default=str, ensure_ascii=False).encode("utf-8", "replace")


def dumps_line(obj: Any) -> bytes:
    """One JSON line; never raises on odd values (falls back to ``json`` with ``str``)."""
    try:
        return orjson.dumps(obj, default=_default, option=_OPTS)
    except (TypeError, orjson.JSONEncodeError):
        return (json.dumps(obj, default=str, ensure_ascii=False) + "\n").encode("utf-8", "replace")


class JsonlWriter:
    """Append-only JSONL file opened lazily; ``flush`` at test end so a crash loses little.

    Capture must never break the user's run: the first ``OSError`` (unwritable directory,
    full disk, file-size limit) is kept in ``error``, the file is dropped, and later writes
    only count the lines they lose (``lost``). The caller reports it once.
    """

    def __init__(self, path: Path, buffering: int = 1 << 20) -> None:
        self.path = path
        self._buffering = buffering
        self._fh: Any = None
        self._lock = threading.Lock()
        self._closed = False
        self.count = 0
        self.lost = 0
        self.error: OSError | None = None

    def write(self, obj: Any) -> None:
        self.write_raw(dumps_line(obj), 1)

    def write_raw(self, blob: bytes | bytearray, lines: int) -> None:
        """Append already-serialised JSONL (``lines`` lines) in one locked write."""
        if not blob:
            return
        with self._lock:
            if self._closed:
                return  # late span after the session's merge: never resurrect a merged part file
            if self.error is not None:
                self.lost += lines
                return
            try:
                self._open().write(blob)
            except OSError as exc:
                self._fail(exc)
                self.lost += lines
                return
            self.count += lines

    def write_many(self, fill: Callable[[Callable[[bytes], Any]], int]) -> None:
        """``fill(write)`` appends pieces through the file's buffered ``write`` and returns its line count.

        One lock for a whole batch and no joined copy: the pieces go straight into the file
        buffer (reused memory, unlike a fresh ``bytes`` per batch). Nothing happens once closed;
        after a write error ``fill`` runs against a sink that only counts.
        """
        with self._lock:
            if self._closed:
                return
            if self.error is not None:
                self.lost += fill(_discard)
                return
            try:
                self.count += fill(self._open().write)
            except OSError as exc:
                self._fail(exc)

    def _open(self) -> Any:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab", buffering=self._buffering)  # noqa: SIM115
        return self._fh

    def fail(self, exc: OSError, lost: int = 0) -> None:
        """Record an error met outside the writer (a spill file) and the lines it cost."""
        with self._lock:
            self.lost += lost
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        """Keep the first error and drop the file (lock held); what it holds may be torn."""
        if self.error is None:
            self.error = exc
        fh, self._fh = self._fh, None
        if fh is not None:
            try:
                fh.close()
            except OSError:
                pass

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                try:
                    self._fh.flush()
                except OSError as exc:
                    self._fail(exc)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fh is not None:
                try:
                    self._fh.close()
                except OSError as exc:
                    self._fh = None
                    self._fail(exc)
                self._fh = None


def _discard(blob: bytes) -> None:
    """The sink of a failed writer: lines are rendered (to be counted) and dropped."""
