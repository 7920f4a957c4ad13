"""Hand the C heap's free memory back to the system once the scan's per-trace state is gone.

The scan frees ~100 MB of small blocks at a million spans (frozen trace states, outlier
samples); glibc keeps most of them mapped, so whatever runs next (the store opened for the
evidence viewer, the publishers) would add its memory on top. ``malloc_trim`` returns them.
Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
if sys.platform.startswith("linux"):
    try:
        _trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        _trim = None


def release_free_memory() -> None:
    if _trim is not None:
        _trim(0)
