"""The keys used most recently, for state kept compact while it is not in use.

Readers keep per-trace state; spans of a trace mostly arrive together, so a trace not seen
for a while is usually done and its state can be packed. ``touch`` says which key just left
the recent ones; ``revived`` counts a packed key that came back. When keys come back too often
(traces spread over the whole file) packing costs more than it saves, and ``touch`` stops
returning keys.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")

GIVE_UP_AFTER = 256  # revivals before the ratio below is judged
GIVE_UP_SHARE = 4  # give up when more than one packed key in this many came back


class Recent(Generic[K]):
    """The last ``size`` keys touched, least recent first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.packed = 0
        self.revivals = 0
        self._keys: OrderedDict[K, None] = OrderedDict()

    def touch(self, key: K) -> K | None:
        """Mark ``key`` used; returns the key that stopped being recent because of it (to pack), if any."""
        keys = self._keys
        if key in keys:
            keys.move_to_end(key)
            return None
        keys[key] = None
        if len(keys) <= self.size:
            return None
        old = keys.popitem(last=False)[0]
        if self.revivals > GIVE_UP_AFTER and self.revivals * GIVE_UP_SHARE > self.packed:
            self.size = 1 << 62  # keep everything unpacked from now on
            return None
        self.packed += 1
        return old

    def revived(self) -> None:
        """A packed key was used again (and unpacked)."""
        self.revivals += 1
