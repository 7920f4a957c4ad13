"""Files we write load unchanged in halo-engine 0.3.5 (its own SpanRecord, index builder and TraceStore).

halo-engine's package is also named ``engine``, so it runs in its own venv as a subprocess
(``python -I`` so our repo's ``engine`` is not on the path). Skipped when that venv is absent.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from engine.traces.ingest import convert

CHECK = r'''
import asyncio, json, sys, tempfile
from pathlib import Path
from engine.traces.models.canonical_span import SpanRecord
from engine.traces.trace_index_builder import TraceIndexBuilder
from engine.traces.trace_store import TraceStore


def main():
    out = {}
    for arg in sys.argv[1:]:
        path = Path(arg)
        n = changed = 0
        for line in path.read_bytes().splitlines():
            rec = SpanRecord.model_validate_json(line)
            n += 1
            changed += rec.model_dump(mode="json") != json.loads(line)
        res = {"spans": n, "changed": changed}
        if n < 1000:  # below halo-engine's in-process threshold: no worker pool
            tmp = Path(tempfile.mkdtemp())
            idx, meta = tmp / "t.engine-index.jsonl", tmp / "t.engine-index.meta.json"
            asyncio.run(TraceIndexBuilder.build_index(path, idx, meta, schema_version=2))
            store = TraceStore.load(path, idx)
            rows = [json.loads(r) for r in idx.read_text().splitlines()]
            res["traces"] = store.trace_count
            res["indexed_spans"] = sum(r["span_count"] for r in rows)
            res["error_traces"] = sum(r["has_errors"] for r in rows)
            res["viewed"] = sum(len(store.view_trace(r["trace_id"]).spans) for r in rows)
        out[path.name] = res
    print(json.dumps(out))


if __name__ == "__main__":
    main()
'''


def test_converted_corpora_load_in_halo_engine(corpora: Path, tmp_path: Path, halo_engine_python: Path) -> None:
    big = tmp_path / "all.jsonl"
    small = tmp_path / "small.jsonl"
    stats_big = convert([corpora], big)
    stats_small = convert([corpora / "swe-agent-traj", corpora / "any-agent-otel"], small)
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    proc = subprocess.run([str(halo_engine_python), "-I", str(script), str(big), str(small)],
                          capture_output=True, text=True, cwd=str(tmp_path), check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    assert res["all.jsonl"] == {"spans": stats_big.spans, "changed": 0}
    small_res = res["small.jsonl"]
    n_traces = len({json.loads(line)["trace_id"] for line in small.read_bytes().splitlines()})
    assert small_res == {
        "spans": stats_small.spans,
        "changed": 0,
        "traces": n_traces,
        "indexed_spans": stats_small.spans,
        "error_traces": 1,  # the one any-agent run whose final_output tool failed
        "viewed": stats_small.spans,
    }
