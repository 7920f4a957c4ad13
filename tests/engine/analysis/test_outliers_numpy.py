"""Large outlier groups are judged with numpy (sort, compare); small ones with ``sorted``: same numbers."""

from __future__ import annotations

import random

import pytest

from engine.analysis.detectors import outliers
from engine.analysis.detectors.outliers import DETECTOR_LATENCY, DETECTOR_TOKENS, OutlierStats


def _stats(rng: random.Random, n: int, kind: str) -> OutlierStats:
    st = OutlierStats(k=3.0, min_samples=5)
    for det in (DETECTOR_LATENCY, DETECTOR_TOKENS):
        g = st.group(det, "k", "tool")
        for i in range(n):
            if kind == "ties":
                v = float(rng.choice([1, 2, 2, 3, 900]))
            elif kind == "ints":
                v = float(rng.randrange(1, 10**17))  # beyond 2**53: rounded once, when stored
            else:
                v = rng.lognormvariate(3, 1.5) if rng.random() > 0.01 else rng.choice([1e6, float("inf")])
            g.add(v, i // 7, f"{i:016x}")
    return st


@pytest.mark.parametrize("kind", ["spread", "ties", "ints"])
@pytest.mark.parametrize("n", [5, 6, 999, 1000])
def test_numpy_and_sorted_judge_alike(kind: str, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    seed = n * 31 + len(kind)
    monkeypatch.setattr(outliers, "NUMPY_FROM", 1 << 40)
    plain = _stats(random.Random(seed), n, kind).results()
    monkeypatch.setattr(outliers, "NUMPY_FROM", 1)
    fast = _stats(random.Random(seed), n, kind).results()
    assert [(r.hit, r.trace_idx, r.extremes, r.threshold, r.median, r.samples) for r in fast] == [
        (r.hit, r.trace_idx, r.extremes, r.threshold, r.median, r.samples) for r in plain
    ]
    assert all(type(r.median) is float and type(r.threshold) is float for r in fast)
    if kind == "spread" and n >= 999:
        assert fast and all(r.trace_idx for r in fast)  # something over the threshold to compare
