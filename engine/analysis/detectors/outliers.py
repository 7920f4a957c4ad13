"""Latency and token outliers: robust (median + k·MAD) per span name / tool / model.

Streaming: per group we keep only a float array of values and a parallel int array of trace
indexes (12 bytes a span), plus a small heap of the most extreme spans for evidence. Groups
with fewer than ``min_samples`` values, or no spread at all, never produce outliers.
"""

from __future__ import annotations

import heapq
from array import array
from dataclasses import dataclass, field

from engine.analysis.detectors.base import Hit
from engine.analysis.stats import median, robust_threshold

DETECTOR_LATENCY = "latency_outlier"
DETECTOR_TOKENS = "token_outlier"
MAX_GROUPS = 5000
TOP_KEEP = 32


@dataclass
class _Group:
    values: array = field(default_factory=lambda: array("d"))
    traces: array = field(default_factory=lambda: array("l"))
    top: list[tuple[float, str, int]] = field(default_factory=list)  # min-heap of (value, span_id, trace)


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

    def __init__(self, k: float, min_samples: int) -> None:
        self.k = k
        self.min_samples = min_samples
        self.groups: dict[tuple[str, str], _Group] = {}

    def add(self, detector: str, group: str, value: float, trace_idx: int, span_id: str) -> None:
        g = self.groups.get((detector, group))
        if g is None:
            if len(self.groups) >= MAX_GROUPS:
                return
            g = self.groups[(detector, group)] = _Group()
        g.values.append(value)
        g.traces.append(trace_idx)
        item = (value, span_id, trace_idx)
        if len(g.top) < TOP_KEEP:
            heapq.heappush(g.top, item)
        elif item > g.top[0]:
            heapq.heapreplace(g.top, item)

    def results(self) -> list[OutlierResult]:
        out: list[OutlierResult] = []
        for (detector, group), g in sorted(self.groups.items()):
            if len(g.values) < self.min_samples:
                continue
            thr = robust_threshold(g.values, self.k)
            if thr is None:
                continue
            over = {t for v, t in zip(g.values, g.traces, strict=True) if v > thr}
            if not over:
                continue
            unit = "ms" if detector == DETECTOR_LATENCY else "tokens"
            what = "Slow" if detector == DETECTOR_LATENCY else "Token-heavy"
            hit = Hit(
                detector,
                group,
                f"{what} `{group}` spans (robust outliers)",
                "latency_outlier" if detector == DETECTOR_LATENCY else "token_outlier",
                suggested_fix=(
                    "Look at what the outlier spans have in common (inputs, retries, payload size)."
                ),
            )
            med = median(g.values)
            extremes = [
                (t, s, f"{v:.0f} {unit} (median {med:.0f} {unit}, threshold {thr:.0f} {unit})")
                for v, s, t in sorted(g.top, reverse=True)
                if v > thr
            ]
            out.append(OutlierResult(hit, over, extremes, thr, med, len(g.values)))
        return out
