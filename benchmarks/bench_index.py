#!/usr/bin/env python3
"""Index benchmark: our cold/warm/incremental build and regex count vs a plain orjson pass and halo-engine.

Not a timed test: run by hand, numbers go into benchmarks/README.md. Every measurement runs
in a fresh subprocess and reports CPU seconds (user+sys of the operation, children included)
and peak RSS (``ru_maxrss``). Inputs come from ``../shared/bench/gen_traces.py`` into
``benchmarks/data/`` (gitignored; the 1M file is ~2.2 GB and is reused when present).

    python benchmarks/bench_index.py --sizes 10k,100k        # quick
    python benchmarks/bench_index.py --sizes 1m              # the expensive one; run it rarely
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
GEN = ROOT / "tests" / "data" / "gen_traces.py"
OURS = os.environ.get("HALO_BENCH_PYTHON", sys.executable)
HALO = os.environ.get("HALO_ENGINE_PYTHON", "/tmp/haloenv/bin/python")
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
PATTERNS = ["quota exceeded", "TimeoutError|PermissionError", r"Error: \d{3} "]  # literal, alternation, \d

_PRELUDE = """
import json, resource, sys, time
def _cpu():
    s = resource.getrusage(resource.RUSAGE_SELF); c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime
def _done(t0, w0, **extra):
    s = resource.getrusage(resource.RUSAGE_SELF); c = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {"cpu": round(_cpu() - t0, 3), "wall": round(time.perf_counter() - w0, 3),
           "rss_mb": round(max(s.ru_maxrss, c.ru_maxrss) / 1024, 1)}
    out.update(extra)
    print("RESULT " + json.dumps(out))
"""

PLAIN = """
import orjson
t0, w0 = _cpu(), time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        orjson.loads(line)
_done(t0, w0)
"""

OUR_OPEN = """
from pathlib import Path
from engine.traces.index_cache import open_index
t0, w0 = _cpu(), time.perf_counter()
idx, how = open_index(sys.argv[1], Path(sys.argv[2]))
_done(t0, w0, how=how, spans=idx.span_count, traces=len(idx.trace_ids))
"""

OUR_REGEX = """
from pathlib import Path
from engine.traces.store import TraceStore
from engine.traces.query_models import TraceFilters
store = TraceStore.open(sys.argv[1], cache_dir=Path(sys.argv[2]))
assert store.files[0].how == "warm", store.files[0].how
per = []
for pat in sys.argv[3:]:
    t0, w0 = _cpu(), time.perf_counter()
    n = store.count_traces(TraceFilters(regex_pattern=pat)).total
    per.append({"pattern": pat, "cpu": round(_cpu() - t0, 3), "wall": round(time.perf_counter() - w0, 3), "count": n})
t0, w0 = _cpu(), time.perf_counter()
_done(t0, w0, cpu_total=round(sum(p["cpu"] for p in per), 3), patterns=per)
"""

HALO_BUILD = """
import asyncio, multiprocessing as mp
from pathlib import Path
_orig = mp.get_context
mp.get_context = lambda method=None: _orig("fork")  # same workers, but children we wait for: CPU is counted
from engine.traces.trace_index_builder import TraceIndexBuilder
from engine.traces.models.trace_index_config import TraceIndexConfig
t0, w0 = _cpu(), time.perf_counter()
asyncio.run(TraceIndexBuilder.ensure_index_exists(Path(sys.argv[1]), TraceIndexConfig(index_dir=Path(sys.argv[2]))))
_done(t0, w0)
"""

HALO_REGEX = """
from pathlib import Path
from engine.traces.trace_index_builder import sidecar_index_path
from engine.traces.trace_store import TraceStore
from engine.traces.models.trace_query_models import TraceFilters
trace = Path(sys.argv[1])
store = TraceStore.load(trace, sidecar_index_path(trace, Path(sys.argv[2])))
per = []
for pat in sys.argv[3:]:
    t0, w0 = _cpu(), time.perf_counter()
    n = store.count_traces(TraceFilters(regex_pattern=pat)).total
    per.append({"pattern": pat, "cpu": round(_cpu() - t0, 3), "wall": round(time.perf_counter() - w0, 3), "count": n})
t0, w0 = _cpu(), time.perf_counter()
_done(t0, w0, cpu_total=round(sum(p["cpu"] for p in per), 3), patterns=per)
"""


def measure(python: str, code: str, *args: str, cwd: Path = ROOT) -> dict:
    """Run ``code`` in a fresh interpreter; return its RESULT line."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run(
        [python, "-c", textwrap.dedent(_PRELUDE + code), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"measurement failed ({python}):\n{r.stderr[-3000:]}")


def ensure_file(name: str, spans: int, seed: int = 7) -> Path:
    out = DATA / name
    if not out.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        subprocess.run([sys.executable, str(GEN), "--spans", str(spans), "--out", str(tmp), "--seed", str(seed)],
                       check=True)
        tmp.replace(out)
    return out


def halo_usable() -> bool:
    if not Path(HALO).exists():
        return False
    r = subprocess.run([HALO, "-c", "import engine.traces.trace_index_builder, engine.traces.trace_store"],
                       capture_output=True, cwd="/")
    return r.returncode == 0


def bench_size(label: str, n: int, with_halo: bool) -> dict:
    src = ensure_file(f"traces_{label}.jsonl", n)
    extra = ensure_file(f"append_{label}.jsonl", max(1, n // 100), seed=99).read_bytes()
    res: dict = {"size": label, "spans": n, "bytes": src.stat().st_size}
    work = Path(tempfile.mkdtemp(prefix=f"halo-bench-{label}-", dir=DATA))
    try:
        copy = work / src.name  # appended to below: never touch the shared input
        shutil.copyfile(src, copy)
        cache = work / "cache"
        res["plain"] = measure(OURS, PLAIN, str(copy))
        res["cold"] = measure(OURS, OUR_OPEN, str(copy), str(cache))
        res["warm"] = measure(OURS, OUR_OPEN, str(copy), str(cache))
        res["regex"] = measure(OURS, OUR_REGEX, str(copy), str(cache), *PATTERNS)
        if with_halo:
            hdir = work / "halo-index"
            res["halo_build"] = measure(HALO, HALO_BUILD, str(copy), str(hdir), cwd=Path("/"))
            res["halo_regex"] = measure(HALO, HALO_REGEX, str(copy), str(hdir), *PATTERNS, cwd=Path("/"))
        with open(copy, "ab") as fh:
            fh.write(extra)
        res["incremental"] = measure(OURS, OUR_OPEN, str(copy), str(cache))
        res["append_bytes"] = len(extra)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    p = res["plain"]["cpu"] or 1e-9
    res["ratios"] = {
        "cold_vs_plain_cpu": round(res["cold"]["cpu"] / p, 2),
        "incremental_vs_cold_cpu": round(res["incremental"]["cpu"] / (res["cold"]["cpu"] or 1e-9), 3),
        "warm_vs_cold_cpu": round(res["warm"]["cpu"] / (res["cold"]["cpu"] or 1e-9), 3),
    }
    if "halo_build" in res:
        res["ratios"]["halo_build_vs_plain_cpu"] = round(res["halo_build"]["cpu"] / p, 2)
        res["ratios"]["halo_build_vs_ours_cpu"] = round(res["halo_build"]["cpu"] / (res["cold"]["cpu"] or 1e-9), 2)
        res["ratios"]["halo_regex_vs_ours_cpu"] = [
            round(h["cpu"] / (o["cpu"] or 1e-9), 1)
            for h, o in zip(res["halo_regex"]["patterns"], res["regex"]["patterns"], strict=True)
        ]
        res["regex_counts_agree"] = [p["count"] for p in res["halo_regex"]["patterns"]] == [
            p["count"] for p in res["regex"]["patterns"]
        ]
    return res


def markdown(rows: list[dict]) -> str:
    out = [
        "| size | plain orjson CPU s / RSS MB | our cold CPU s / RSS MB (× plain) | warm CPU s | "
        "1% append CPU s (× cold) | our regex counts CPU s | halo-engine build CPU s / RSS MB (× plain) | "
        "halo-engine regex counts CPU s (× ours) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ra = r["ratios"]
        halo_b = halo_r = "n/a"
        if "halo_build" in r:
            halo_b = (f"{r['halo_build']['cpu']} / {r['halo_build']['rss_mb']} "
                      f"({ra['halo_build_vs_plain_cpu']}×)")
            halo_r = " / ".join(
                f"{p['cpu']} ({x}×)" for p, x in zip(r["halo_regex"]["patterns"], ra["halo_regex_vs_ours_cpu"], strict=True)
            )
        out.append(
            f"| {r['size']} | {r['plain']['cpu']} / {r['plain']['rss_mb']} | "
            f"{r['cold']['cpu']} / {r['cold']['rss_mb']} ({ra['cold_vs_plain_cpu']}×) | {r['warm']['cpu']} | "
            f"{r['incremental']['cpu']} ({ra['incremental_vs_cold_cpu']}×) | "
            f"{' / '.join(str(p['cpu']) for p in r['regex']['patterns'])} | {halo_b} | {halo_r} |"
        )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10k,100k", help="comma-separated: 10k,100k,1m")
    ap.add_argument("--no-halo", action="store_true", help="skip the halo-engine comparison")
    ap.add_argument("--out", default=str(HERE / "out" / "bench_index.json"))
    args = ap.parse_args()
    with_halo = not args.no_halo and halo_usable()
    if not args.no_halo and not with_halo:
        print(f"halo-engine not usable at {HALO}; skipping its comparison", file=sys.stderr)
    rows = []
    for label in args.sizes.split(","):
        label = label.strip().lower()
        print(f"== {label}", file=sys.stderr)
        rows.append(bench_size(label, SIZES[label], with_halo))
        print(json.dumps(rows[-1], indent=1), file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
