#!/usr/bin/env python3
"""Benchmark: the whole deterministic analysis vs a plain orjson-per-line pass over the same file.

Target: analysis CPU ≤ 2x the baseline's. Both run in fresh subprocesses (no warm caches or
imports shared), alternating, ``--repeat`` times each; we report the minimum CPU seconds
(user+sys of the child) of each, which is the least noisy statistic on a shared machine.

Usage:
    python benchmarks/bench_analysis.py [--file benchmarks/data/traces_1m.jsonl] [--spans 1000000] [--repeat 2]

The file is generated with ``tests/data/gen_traces.py`` when missing (reused if present).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "gen_traces.py"

BASELINE = """
import sys, orjson
n = 0
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        orjson.loads(line)
        n += 1
print(n)
"""

ANALYSIS = """
import sys
from pathlib import Path
from engine.run import run_analysis
out = run_analysis([Path(sys.argv[1])], Path(sys.argv[2]))
f = out.findings
print(f.dataset.spans, len(f.failure_modes), len(f.one_offs))
"""


def _child(code: str, *args: str) -> tuple[float, float, str]:
    """Run ``code`` in a fresh interpreter; (cpu seconds, wall seconds, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, proc.stdout.strip()


def ensure_file(path: Path, spans: int) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(GEN), "--spans", str(spans), "--out", str(path)], check=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", type=Path, default=REPO / "benchmarks" / "data" / "traces_1m.jsonl")
    ap.add_argument("--spans", type=int, default=1_000_000, help="spans to generate when --file is missing")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--max-ratio", type=float, default=2.0)
    args = ap.parse_args()
    ensure_file(args.file, args.spans)
    base_cpu: list[float] = []
    an_cpu: list[float] = []
    an_wall: list[float] = []
    result = ""
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeat):
            cpu, _, _ = _child(BASELINE, str(args.file))
            base_cpu.append(cpu)
            cpu, wall, result = _child(ANALYSIS, str(args.file), os.path.join(out, "o"))
            an_cpu.append(cpu)
            an_wall.append(wall)
    spans, modes, one_offs = (int(x) for x in result.split())
    ratio = min(an_cpu) / min(base_cpu)
    report = {
        "file": str(args.file),
        "spans": spans,
        "baseline_cpu_s": round(min(base_cpu), 2),
        "analysis_cpu_s": round(min(an_cpu), 2),
        "analysis_wall_s": round(min(an_wall), 2),
        "ratio": round(ratio, 2),
        "failure_modes": modes,
        "one_offs": one_offs,
        "runs": {"baseline": [round(x, 2) for x in base_cpu], "analysis": [round(x, 2) for x in an_cpu]},
    }
    print(json.dumps(report, indent=2))
    return 0 if ratio <= args.max_ratio else 1


if __name__ == "__main__":
    raise SystemExit(main())
