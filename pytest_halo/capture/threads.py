"""Carry the owning test (``test_context.OWNER``) into threads and thread-pool work items.

Python threads start with an empty context, so neither our owner nor OTel's current span
follows work into a ``threading.Thread`` or a ``ThreadPoolExecutor``. While capture is on,
``Thread.start`` and ``ThreadPoolExecutor.submit`` are wrapped to hand the starter's owner
to the new thread / the work item (``asyncio.to_thread`` copies the context itself).
A thread started when no test owns the code is left alone; a pool work item always runs
with its submitter's owner, none included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pytest_halo.capture.test_context import OWNER

_ORIGINAL_START: Any = None
_ORIGINAL_SUBMIT: Any = None


def _run_owned(owner: str | None, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    token = OWNER.set(owner)
    try:
        return fn(*args, **kwargs)
    finally:
        OWNER.reset(token)


def _start(self: threading.Thread) -> None:
    owner = OWNER.get()
    if owner is not None and not getattr(self, "_halo_owned", False):
        run = self.run

        def owned_run() -> None:
            OWNER.set(owner)  # the thread's own (fresh) context
            run()

        self.run = owned_run  # type: ignore[method-assign]
        self._halo_owned = True  # type: ignore[attr-defined]
    _ORIGINAL_START(self)


def _submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    # Always the submitter's owner, None included: the pool's worker thread may have been
    # started during an earlier test's call and carries that test as its own owner.
    return _ORIGINAL_SUBMIT(self, _run_owned, OWNER.get(), fn, *args, **kwargs)


def install() -> None:
    """Wrap ``Thread.start`` and ``ThreadPoolExecutor.submit`` (once per process)."""
    global _ORIGINAL_START, _ORIGINAL_SUBMIT
    if _ORIGINAL_START is None:
        _ORIGINAL_START = threading.Thread.start
        threading.Thread.start = _start  # type: ignore[method-assign]
    if _ORIGINAL_SUBMIT is None:
        _ORIGINAL_SUBMIT = ThreadPoolExecutor.submit
        ThreadPoolExecutor.submit = _submit  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """Restore the originals."""
    global _ORIGINAL_START, _ORIGINAL_SUBMIT
    if _ORIGINAL_START is not None:
        threading.Thread.start = _ORIGINAL_START  # type: ignore[method-assign]
        _ORIGINAL_START = None
    if _ORIGINAL_SUBMIT is not None:
        ThreadPoolExecutor.submit = _ORIGINAL_SUBMIT  # type: ignore[method-assign]
        _ORIGINAL_SUBMIT = None
