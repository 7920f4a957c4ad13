"""Test data for the index/store tests: generated trace files and brute-force reference answers."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from engine.traces.normalize import rollup
from engine.traces.span import iso_to_ns

GEN = Path(__file__).resolve().parents[2] / "data" / "gen_traces.py"


def generate(out: Path, spans: int = 2000, seed: int = 7, interleave: bool = False) -> Path:
    """Write a deterministic synthetic trace file with the shared generator."""
    cmd = [sys.executable, str(GEN), "--spans", str(spans), "--out", str(out), "--seed", str(seed)]
    if interleave:
        cmd.append("--interleave")
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def span_line(tid: str, sid: str, parent: str = "", name: str = "op", **kw: Any) -> bytes:
    """One canonical span line; ``kw`` overrides fields (``attributes=...`` etc.)."""
    span = {
        "trace_id": tid,
        "span_id": sid,
        "parent_span_id": parent,
        "trace_state": "",
        "name": name,
        "kind": "SPAN_KIND_INTERNAL",
        "start_time": "2025-06-01T00:00:00.000000000Z",
        "end_time": "2025-06-01T00:00:01.000000000Z",
        "status": {"code": "STATUS_CODE_OK", "message": ""},
        "resource": {"attributes": {"service.name": "svc"}},
        "scope": {"name": "test", "version": ""},
        "attributes": {},
    }
    span.update(kw)
    return orjson.dumps(span) + b"\n"


def brute_rollups(path: Path) -> dict[str, dict[str, Any]]:
    """Per-trace facts computed the slow, obvious way (first span per span id wins)."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "n": 0,
            "err": 0,
            "tin": 0,
            "tout": 0,
            "start": None,
            "end": None,
            "cats": defaultdict(int),
            "models": set(),
            "agents": set(),
            "tools": set(),
            "services": set(),
            "ids": set(),
        }
    )
    with open(path, "rb") as fh:
        for line in fh:
            d = orjson.loads(line)
            r = out[d["trace_id"]]
            if d["span_id"] in r["ids"]:
                continue
            r["ids"].add(d["span_id"])
            cat, model, tin, tout, tool, agent, err = rollup(d)
            r["n"] += 1
            r["err"] += int(err)
            r["tin"] += tin
            r["tout"] += tout
            s, e = iso_to_ns(d["start_time"]), iso_to_ns(d["end_time"])
            r["start"] = s if r["start"] is None else min(r["start"], s)
            r["end"] = e if r["end"] is None else max(r["end"], e)
            r["cats"][cat] += 1
            for key, v in (("models", model), ("agents", agent), ("tools", tool)):
                if v:
                    r[key].add(v)
            svc = d["resource"]["attributes"].get("service.name")
            if svc:
                r["services"].add(svc)
    return dict(out)
