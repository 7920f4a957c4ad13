"""Same failure mode → same id, whatever the order, sample or machine."""

from __future__ import annotations

import json
import random

from spanbuilder import Run

from engine.analysis.config import AnalysisConfig
from engine.analysis.pipeline import analyze_spans
from engine.findings import mode_id


def _runs(n: int) -> list[Run]:
    out = []
    for i in range(n):
        r = Run(i, nodeid=f"suite::test_{i}", outcome="failed" if i % 3 == 0 else "passed")
        r.llm(calls=[("book", json.dumps({"f": f"HAT{i:03d}"}))])
        if i % 4 == 0:
            r.tool("book", json.dumps({"f": f"HAT{i:03d}"}), f"Error: flight HAT{i:03d} not available on date 2024-05-{i % 28 + 1:02d}")
        if i % 5 == 0:
            r.tool("pay", "{}", f"Error: payment amount does not add up, total price is {i * 7}, but paid {i}")
            r.tool("pay", "{}", f"Error: payment amount does not add up, total price is {i * 7}, but paid {i}")
        if i % 6 == 0:
            r.llm(text="I'm sorry, but I cannot process that change.")
        r.llm(text="Done.")
        out.append(r)
    return out


def _ids(spans, **cfg) -> dict[str, str]:
    f = analyze_spans(spans, config=AnalysisConfig(**cfg))
    return {m.title: m.id for m in f.failure_modes}


def test_ids_are_hashes_of_detector_and_key_only() -> None:
    assert mode_id("tool_error", "book\x1fError: x") == mode_id("tool_error", "book\x1fError: x")
    assert mode_id("tool_error", "book\x1fError: x") != mode_id("tool_error", "pay\x1fError: x")
    assert mode_id("tool_error", "a").startswith("fm-") and len(mode_id("tool_error", "a")) == 15


def test_same_ids_and_evidence_when_spans_are_shuffled() -> None:
    spans = [s for r in _runs(60) for s in r.spans]
    base = analyze_spans(spans)
    assert len(base.failure_modes) >= 4
    rng = random.Random(11)
    for _ in range(3):
        shuffled = spans[:]
        rng.shuffle(shuffled)
        again = analyze_spans(shuffled)
        assert [m.model_dump() for m in again.failure_modes] == [m.model_dump() for m in base.failure_modes]
        assert again.observed == base.observed


def test_same_ids_on_subsamples() -> None:
    runs = _runs(90)
    full = _ids([s for r in runs for s in r.spans])
    rng = random.Random(5)
    for size in (30, 45):
        sample = rng.sample(runs, size)
        sub = _ids([s for r in sample for s in r.spans])
        assert sub, "the subsample should still show modes"
        for title, id_ in sub.items():
            assert full[title] == id_
    # ids never encode trace ids, counts or times
    for id_ in full.values():
        assert all(r.trace_id[:12] not in id_ for r in runs)
