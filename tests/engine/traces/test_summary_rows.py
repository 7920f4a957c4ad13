"""``TraceStore.summary_rows``: the bulk export agrees with ``summary()``, and its one-file fast path with the
general path a trace split across files takes (the twin kept for speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.traces.store import TraceStore

GEN = Path(__file__).resolve().parents[2] / "data" / "gen_traces.py"


def test_summary_rows_match_summary_on_real_data(corpora: Path) -> None:
    store = TraceStore.open([corpora / "tau-bench-airline", corpora / "any-agent-otel"])
    rows = list(store.summary_rows())
    assert [r["trace_id"] for r in rows] == store.trace_ids
    assert rows == [store.summary(t).model_dump() for t in store.trace_ids]


def test_single_file_fast_path_equals_the_split_trace_path(tmp_path: Path) -> None:
    whole = tmp_path / "whole.jsonl"
    subprocess.run([sys.executable, str(GEN), "--spans", "3000", "--out", str(whole)], check=True,
                   capture_output=True)
    lines = whole.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"".join(lines[0::2]))  # every trace's spans alternate between the two files
    second.write_bytes(b"".join(lines[1::2]))
    fast = {r["trace_id"]: r for r in TraceStore.open([whole]).summary_rows()}
    split = {r["trace_id"]: r for r in TraceStore.open([first, second]).summary_rows()}
    assert len(fast) > 100 and split == fast


def test_ns_to_iso_minute_cache_gives_datetimes_answer() -> None:
    import random
    from datetime import datetime, timezone

    from engine.traces.span import ns_to_iso

    rng = random.Random(7)
    edges = [0, 59_999_999_999, 60_000_000_000, 951_782_399_999_999_999, 951_868_800_000_000_000,
             1_700_000_000_123_456_789, 253_402_300_799_999_999_999]
    for ns in edges + [rng.randrange(0, 253_402_300_799 * 10**9) for _ in range(5000)]:
        secs, frac = divmod(ns, 10**9)
        want = datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{frac:09d}Z"
        assert ns_to_iso(ns) == want
        assert ns_to_iso(ns) == want  # the second time from the cache
