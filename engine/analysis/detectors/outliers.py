"""Latency and token outliers: robust (median + k·MAD) per span name / tool / model.

Streaming: per group we keep a float array of values and a parallel int array of trace
indexes (12 bytes a span), plus a small heap of the most extreme spans for evidence. Groups
with fewer than ``min_samples`` values, or no spread at all, never produce outliers.
Latency groups are keyed by span name (LLM spans by model); token groups by model.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from typing import cast

from engine.analysis.detectors.base import Hit
from engine.analysis.stats import median_and_mad

DETECTOR_LATENCY = "latency_outlier"
DETECTOR_TOKENS = "token_outlier"
MAX_GROUPS = 5000
TOP_KEEP = 32


class Group:
    """One group's measurements."""

    __slots__ = ("label", "values", "traces", "top", "floor")

    def __init__(self, label: str) -> None:
        self.label = label
        self.values = array("d")
        self.traces = array("l")
        self.top: list[tuple[float, str, int]] = []  # min-heap of (value, span_id, trace)
        self.floor = float("-inf")  # values at or below this cannot enter ``top`` (the scanner checks it inline)

    def add(self, value: float, trace_idx: int, span_id: str) -> None:
        self.values.append(value)
        self.traces.append(trace_idx)
        if value >= self.floor:
            self.offer(value, trace_idx, span_id)

    def offer(self, value: float, trace_idx: int, span_id: str) -> None:
        """Keep the ``TOP_KEEP`` most extreme (value, span id) for evidence, deterministically."""
        top = self.top
        item = (value, span_id, trace_idx)
        if len(top) < TOP_KEEP:
            heapq.heappush(top, item)
        elif item > top[0]:
            heapq.heapreplace(top, item)
        if len(top) >= TOP_KEEP:
            self.floor = top[0][0]


class _Sink:
    def append(self, _: object) -> None:
        return None

    def __len__(self) -> int:
        return 0


class _Overflow(Group):
    """Sink for groups past ``MAX_GROUPS`` (high-cardinality span names): measurements are dropped."""

    def add(self, value: float, trace_idx: int, span_id: str) -> None:
        return None

    def offer(self, value: float, trace_idx: int, span_id: str) -> None:
        return None


@dataclass
class OutlierResult:
    """One group's outliers: the hit template, traces over the threshold, most extreme (trace, span)."""

    hit: Hit
    trace_idx: set[int]
    extremes: list[tuple[int, str, str]]  # (trace_idx, span_id, example)
    threshold: float
    median: float
    samples: int


class OutlierStats:
    """Accumulates per-group measurements during the scan; judges outliers at the end."""

    def __init__(
        self,
        k: float,
        min_samples: int,
        min_ratio: float = 2.0,
        min_excess_ms: float = 500.0,
        min_excess_tokens: float = 500.0,
    ) -> None:
        self.k = k
        self.min_samples = min_samples
        self.min_ratio = min_ratio
        # An absolute floor: a span 3 ms slower than a 1 ms median is noise, not a failure mode.
        self.min_excess = {DETECTOR_LATENCY: min_excess_ms, DETECTOR_TOKENS: min_excess_tokens}
        self.latency: dict[str, Group] = {}
        self.tokens: dict[str, Group] = {}
        self._overflow = _Overflow("")
        self._overflow.values = _Sink()  # type: ignore[assignment]
        self._overflow.traces = _Sink()  # type: ignore[assignment]
        self._overflow.floor = float("inf")

    def group(self, detector: str, key: str, kind: str) -> Group:
        """The group for ``key`` (created on first use; ``kind`` is the category or token kind for its label)."""
        groups = self.latency if detector == DETECTOR_LATENCY else self.tokens
        g = groups.get(key)
        if g is None:
            if len(self.latency) + len(self.tokens) >= MAX_GROUPS:
                return self._overflow
            g = groups[key] = Group(f"{kind}:{key}")
        return g

    def add(self, detector: str, key: str, kind: str, value: float, trace_idx: int, span_id: str) -> None:
        self.group(detector, key, kind).add(value, trace_idx, span_id)

    def results(self) -> list[OutlierResult]:
        out: list[OutlierResult] = []
        for detector, groups in ((DETECTOR_LATENCY, self.latency), (DETECTOR_TOKENS, self.tokens)):
            for _, g in sorted(groups.items()):
                res = self._judge(detector, g)
                if res is not None:
                    out.append(res)
        return out

    def _judge(self, detector: str, g: Group) -> OutlierResult | None:
        if len(g.values) < self.min_samples:
            return None
        med, mad = _median_mad(g.values)
        if mad <= 0:
            return None
        thr = max(med + self.k * 1.4826 * mad, med * self.min_ratio, med + self.min_excess[detector])
        over = _over(g, thr)
        if not over:
            return None
        latency = detector == DETECTOR_LATENCY
        unit = "ms" if latency else "tokens"
        hit = Hit(
            detector,
            g.label,
            f"{'Slow' if latency else 'Token-heavy'} `{g.label}` spans (robust outliers)",
            "latency_outlier" if latency else "token_outlier",
            suggested_fix="Look at what the outlier spans have in common (inputs, retries, payload size).",
        )
        extremes = [
            (t, s, f"{v:.0f} {unit} (median {med:.0f} {unit}, threshold {thr:.0f} {unit})")
            for v, s, t in sorted(g.top, reverse=True)
            if v > thr
        ]
        return OutlierResult(hit, over, extremes, thr, med, len(g.values))


NUMPY_FROM = 20_000  # values in a group from which numpy sorts and compares (below, importing it costs more)


def _median_mad(values: array) -> tuple[float, float]:
    """``median_and_mad`` of the values; a large group is sorted by numpy (``sorted`` over a million values
    builds a million floats). Both order IEEE doubles alike (only positive, finite or +inf values are kept,
    never NaN) and the arithmetic is the same, so the results are too."""
    if len(values) < NUMPY_FROM:
        return median_and_mad(sorted(values))
    import numpy as np

    ordered = np.sort(np.frombuffer(values, dtype=np.float64))
    med, mad = median_and_mad(cast("Sequence[float]", ordered))
    return float(med), float(mad)


def _over(g: Group, thr: float) -> set[int]:
    """The traces with a value over ``thr``."""
    if len(g.values) < NUMPY_FROM:
        return set(compress(g.traces, map(thr.__lt__, g.values)))
    import numpy as np

    values = np.frombuffer(g.values, dtype=np.float64)
    traces = np.frombuffer(g.traces, dtype=np.dtype(g.traces.typecode))
    return set(traces[values > thr].tolist())
