"""Work on every core: a file cut into byte ranges at line boundaries, parts run in worker processes.

Part 0 runs in the calling process while the others run in children (``fork`` when this process
has no other threads, else ``spawn``), so ``jobs`` parts use ``jobs`` cores and a single part
costs no process at all. A pool that cannot start (no ``fork``, resource limits) degrades to
running the parts here one after another: the same results, only slower.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from engine.traces.problems import MAX_EXAMPLES, Problems

T = TypeVar("T")
PART_LABEL = "\x00halo-part\x00"  # where a part's problems say they are; rewritten by ``add_part_problems``
_EXAMPLE = re.compile(re.escape(PART_LABEL) + r":(\d+)")

MIN_PART_BYTES = 32 * 1024 * 1024  # smaller parts cost more in process start and merging than they save


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_jobs(total_bytes: int) -> int:
    """One process per core, but no part smaller than ``MIN_PART_BYTES`` (small inputs: 1)."""
    return max(1, min(cpu_count(), total_bytes // MIN_PART_BYTES))


def resolve_jobs(jobs: int | None, total_bytes: int) -> int:
    """``jobs`` as given (``None`` or 0: the default for this input size), never more parts than make sense."""
    if not jobs:
        return default_jobs(total_bytes)
    return max(1, min(int(jobs), max(1, total_bytes // (1024 * 1024))))


def line_ranges(path: str, parts: int, size: int | None = None) -> list[tuple[int, int]]:
    """``parts`` byte ranges covering ``[0, size)``, each ending just after a newline (or at the end).

    A range may be empty when one line is longer than a part.
    """
    if size is None:
        size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as fh:
        for k in range(1, parts):
            at = max(cuts[-1], size * k // parts)
            cuts.append(_next_line(fh, at, size))
    cuts.append(size)
    return [(a, max(a, b)) for a, b in zip(cuts, cuts[1:], strict=False)]


def _next_line(fh: Any, at: int, size: int) -> int:
    """The offset just after the first newline at or after ``at - 1`` (``at`` itself when a line starts there)."""
    return line_end(fh, at - 1, size) if at > 0 else 0


def line_end(fh: Any, start: int, size: int) -> int:
    """The offset just after the first newline at or after ``start`` (``size`` when there is none)."""
    fh.seek(start)
    pos = start
    while pos < size:
        chunk = fh.read(1 << 20)
        if not chunk:
            break
        k = chunk.find(b"\n")
        if k >= 0:
            return pos + k + 1
        pos += len(chunk)
    return size


def _context() -> Any:
    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def run_parts(fn: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> list[T]:
    """``[fn(*args) for args in calls]``, the first in this process and the rest in worker processes."""
    if len(calls) <= 1:
        return [fn(*args) for args in calls]
    pool = None
    futures = []
    try:
        pool = ProcessPoolExecutor(max_workers=len(calls) - 1, mp_context=_context())
        futures = [pool.submit(fn, *args) for args in calls[1:]]
    except (OSError, RuntimeError, ValueError):
        futures = []
    try:
        first = fn(*calls[0])
        rest: list[T] = []
        for k, args in enumerate(calls[1:]):
            try:
                rest.append(futures[k].result() if futures else fn(*args))
            except (BrokenProcessPool, OSError):  # a worker died (killed, out of memory): do its part here
                rest.append(fn(*args))
        return [first, *rest]
    finally:
        if pool is not None:  # not waiting: a worker that sent its result may take a while to free its memory and exit
            pool.shutdown(wait=False, cancel_futures=True)


def add_part_problems(into: Problems, part: Problems, label: str, lines_before: int) -> None:
    """Merge a part's tallies; its examples (``PART_LABEL:line``) become ``label:line`` counted from the file's start."""
    into.skipped.update(part.skipped)
    into.repaired.update(part.repaired)
    for e in part.examples:
        if len(into.examples) < MAX_EXAMPLES:
            into.examples.append(_EXAMPLE.sub(lambda m: f"{label}:{int(m.group(1)) + lines_before}", e, count=1))
