#!/usr/bin/env python3
"""Scaling curve: cold index, whole analysis, regex counts and peak RSS at 10k..10M spans.

Every number is measured in a fresh subprocess and set against a single-threaded
``orjson.loads``-per-line pass over the same file in the same invocation (and against
halo-engine 0.3.5's index build and regex re-scan where it is installed and the size is at
most ``--halo-max``). Wall and CPU seconds (user+sys, children included), peak RSS of the
largest process (``ru_maxrss`` of itself and of its children). Inputs come from
``tests/data/gen_traces.py`` into ``benchmarks/data/`` (gitignored; the 10M file is ~22 GB and
is only generated when the disk has room for it and its index: see ``--sizes``).

    python benchmarks/bench_scaling.py --sizes 10k,100k,1m          # ~3 min
    python benchmarks/bench_scaling.py --sizes 10m --halo-max 1m    # ~25 GB of disk, ~10 min
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_index import HALO, HALO_BUILD, HALO_REGEX, OUR_REGEX, OURS, PLAIN, halo_usable, measure  # noqa: E402

ROOT = HERE.parent
DATA = HERE / "data"
GEN = ROOT / "tests" / "data" / "gen_traces.py"
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
PATTERNS = ["quota exceeded", "TimeoutError|PermissionError", r"Error: \d{3} "]  # literal, alternation, \d

COLD = """
from pathlib import Path
from engine.traces.index_cache import open_index
from engine.traces import content_index
jobs = int(sys.argv[3]) if sys.argv[3] != "auto" else None
t0, w0 = _cpu(), time.perf_counter()
idx, how = open_index(sys.argv[1], Path(sys.argv[2]), jobs=jobs)
_done(t0, w0, how=how, spans=idx.span_count, traces=len(idx.trace_ids),
      content_bytes=content_index.index_bytes(idx.end), file_bytes=idx.end)
"""

CONTENT = """
import os
from engine.traces import content_index
t0, w0 = _cpu(), time.perf_counter()
with open(os.devnull, "wb") as sink:
    content_index.build(sys.argv[1], 0, os.path.getsize(sys.argv[1]), sink)
_done(t0, w0)
"""

ANALYSIS = """
import inspect
from pathlib import Path
from engine.run import run_analysis
jobs = int(sys.argv[3]) if sys.argv[3] != "auto" else None
kw = {}
if "jobs" in inspect.signature(run_analysis).parameters:
    kw["jobs"] = jobs
else:  # code from before the argument (--before-src): the module setting it replaced
    from engine.analysis import source
    source.JOBS = jobs
t0, w0 = _cpu(), time.perf_counter()
out = run_analysis([Path(sys.argv[1])], Path(sys.argv[2]), **kw)
f = out.findings
_done(t0, w0, spans=f.dataset.spans, modes=len(f.failure_modes), one_offs=len(f.one_offs),
      findings_bytes=(Path(sys.argv[2]) / "findings.json").stat().st_size)
"""


def ensure_file(label: str, spans: int) -> Path:
    out = DATA / f"traces_{spans}.jsonl"
    if not out.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        subprocess.run([sys.executable, str(GEN), "--spans", str(spans), "--out", str(tmp), "--seed", "7"], check=True)
        tmp.replace(out)
    return out


def disk_ok(spans: int) -> bool:
    """Room for the file (~2.2 KB a span) if missing, plus its index (~0.1 of it) and some slack."""
    need = spans * 2200 * (0.15 if (DATA / f"traces_{spans}.jsonl").exists() else 1.15) + 2e9
    return shutil.disk_usage(DATA if DATA.exists() else HERE).free > need


def ratio(a: dict, b: dict, key: str = "wall") -> float:
    return round(a[key] / (b[key] or 1e-9), 2)


def bench_size(label: str, n: int, with_halo: bool, jobs: str, single: bool = True) -> dict:
    src = ensure_file(label, n)
    res: dict = {"size": label, "spans": n, "bytes": src.stat().st_size}
    work = Path(tempfile.mkdtemp(prefix=f"halo-scaling-{label}-", dir=DATA))
    try:
        cache = work / "cache"
        res["plain"] = measure(OURS, PLAIN, str(src))
        res["cold"] = measure(OURS, COLD, str(src), str(cache), jobs)
        if single:
            res["cold_1"] = measure(OURS, COLD, str(src), str(work / "cache1"), "1")
            shutil.rmtree(work / "cache1", ignore_errors=True)
        res["content_only"] = measure(OURS, CONTENT, str(src))
        res["regex"] = measure(OURS, OUR_REGEX, str(src), str(cache), *PATTERNS)
        res["analysis"] = measure(OURS, ANALYSIS, str(src), str(work / "out"), jobs)
        if single:
            res["analysis_1"] = measure(OURS, ANALYSIS, str(src), str(work / "out1"), "1")
            same = (work / "out" / "findings.json").read_bytes() == (work / "out1" / "findings.json").read_bytes()
            res["analysis_same_findings"] = same
        if with_halo:
            hdir = work / "halo-index"
            res["halo_build"] = measure(HALO, HALO_BUILD, str(src), str(hdir), cwd=Path("/"))
            res["halo_regex"] = measure(HALO, HALO_REGEX, str(src), str(hdir), *PATTERNS, cwd=Path("/"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    p = res["plain"]
    res["ratios"] = {
        "cold_vs_plain_wall": ratio(res["cold"], p),
        "analysis_vs_plain_wall": ratio(res["analysis"], p),
        "content_index_share": round(res["cold"]["content_bytes"] / res["bytes"], 4),
        "content_build_vs_plain_cpu": round(res["content_only"]["cpu"] / (p["cpu"] or 1e-9), 3),
    }
    if single:
        res["ratios"]["cold1_vs_plain_wall"] = ratio(res["cold_1"], p)
        res["ratios"]["analysis1_vs_plain_wall"] = ratio(res["analysis_1"], p)
    if "halo_build" in res:
        res["ratios"]["halo_build_vs_plain_wall"] = ratio(res["halo_build"], p)
        res["ratios"]["halo_regex_vs_ours_wall"] = [
            round(h["wall"] / (o["wall"] or 1e-9), 1)
            for h, o in zip(res["halo_regex"]["patterns"], res["regex"]["patterns"], strict=True)
        ]
        res["ratios"]["regex_counts_agree"] = [x["count"] for x in res["halo_regex"]["patterns"]] == [
            x["count"] for x in res["regex"]["patterns"]
        ]
    return res


def _single(r: dict, key: str, ratio_key: str) -> str:
    if key not in r:
        return "not run"
    return f"{r[key]['wall']} ({r['ratios'][ratio_key]}×) / {r[key]['rss_mb']} MB"


def markdown(rows: list[dict]) -> str:
    out = [
        "| spans (file) | orjson pass wall s / RSS MB | cold index wall s (× orjson) / CPU s / RSS MB | "
        "cold, 1 process (×) | analysis wall s (× orjson) / RSS MB | analysis, 1 process (×) | "
        "regex counts wall s (literal / alternation / `\\d`) | halo-engine build wall s (×) | "
        "halo-engine regex wall s (× ours) | content index / file |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ra, p = r["ratios"], r["plain"]
        halo_b = halo_r = "n/a"
        if "halo_build" in r:
            halo_b = f"{r['halo_build']['wall']} ({ra['halo_build_vs_plain_wall']}×), {r['halo_build']['rss_mb']} MB"
            halo_r = " / ".join(
                f"{x['wall']} ({y}×)" for x, y in zip(r["halo_regex"]["patterns"], ra["halo_regex_vs_ours_wall"], strict=True)
            )
        out.append(
            f"| {r['spans']:,} ({r['bytes'] / 1e9:.2f} GB) | {p['wall']} / {p['rss_mb']} | "
            f"{r['cold']['wall']} ({ra['cold_vs_plain_wall']}×) / {r['cold']['cpu']} / {r['cold']['rss_mb']} | "
            f"{_single(r, 'cold_1', 'cold1_vs_plain_wall')} | "
            f"{r['analysis']['wall']} ({ra['analysis_vs_plain_wall']}×) / {r['analysis']['rss_mb']} | "
            f"{_single(r, 'analysis_1', 'analysis1_vs_plain_wall')} | "
            f"{' / '.join(str(x['wall']) for x in r['regex']['patterns'])} | {halo_b} | {halo_r} | "
            f"{ra['content_index_share']:.1%} |"
        )
    return "\n".join(out)


def bench_analysis_rounds(label: str, n: int, jobs: str, rounds: int, before: Path | None) -> dict:
    """Only the orjson pass and the whole analysis (default jobs and one process; and the code in
    ``before`` when given), each round running every arm once in a rotating order: on a shared
    machine the load drifts, so ratios are taken within a round and their median reported."""
    src = ensure_file(label, n)
    arms: list[tuple[str, Path, str]] = [("plain", ROOT, ""), ("analysis", ROOT, jobs), ("analysis_1", ROOT, "1")]
    if before is not None:
        arms += [("before", before, jobs), ("before_1", before, "1")]
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in arms}
    work = Path(tempfile.mkdtemp(prefix=f"halo-scaling-{label}-", dir=DATA))
    same = True
    try:
        for r in range(rounds):
            for name, cwd, j in arms[r % len(arms):] + arms[: r % len(arms)]:
                if name == "plain":
                    runs[name].append(measure(OURS, PLAIN, str(src)))
                else:
                    runs[name].append(measure(OURS, ANALYSIS, str(src), str(work / name), j, cwd=cwd))
            first = (work / "analysis" / "findings.json").read_bytes()
            same = same and all((work / name / "findings.json").read_bytes() == first for name in runs if name != "plain")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res: dict = {"size": label, "spans": n, "rounds": rounds, "runs": runs, "same_findings": same}
    res["median"] = {
        name: {
            "wall_ratio": statistics.median(x["wall"] / p["wall"] for x, p in zip(rs, runs["plain"], strict=True)),
            "wall": statistics.median(x["wall"] for x in rs),
            "cpu": statistics.median(x["cpu"] for x in rs),
            "rss_mb": max(x["rss_mb"] for x in rs),
        }
        for name, rs in runs.items()
    }
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10k,100k,1m", help="comma-separated: 10k,100k,1m,10m")
    ap.add_argument("--halo-max", default="1m", help="largest size halo-engine is run on (it needs ~0.9 GB per 1M spans)")
    ap.add_argument("--no-halo", action="store_true")
    ap.add_argument("--jobs", default="auto", help="processes for the index and the analysis (auto: the default)")
    ap.add_argument("--single-max", default="1m", help="largest size also measured on one process")
    ap.add_argument("--out", default=str(HERE / "out" / "bench_scaling.json"))
    ap.add_argument("--analysis-rounds", type=int, default=0,
                    help="only the orjson pass and the analysis, this many rotating rounds (see bench_analysis_rounds)")
    ap.add_argument("--before-src", type=Path, help="with --analysis-rounds: also the analysis of the engine/ under this directory")
    args = ap.parse_args()
    if args.analysis_rounds:
        for label in args.sizes.split(","):
            label = label.strip().lower()
            res = bench_analysis_rounds(label, SIZES[label], args.jobs, args.analysis_rounds, args.before_src)
            print(json.dumps(res, indent=1))
        return 0
    with_halo = not args.no_halo and halo_usable()
    if not args.no_halo and not with_halo:
        print(f"halo-engine not usable at {HALO}; skipping its comparison", file=sys.stderr)
    rows = []
    for label in args.sizes.split(","):
        label = label.strip().lower()
        n = SIZES[label]
        if not disk_ok(n):
            print(f"== {label}: skipped, not enough free disk for the file and its index", file=sys.stderr)
            continue
        print(f"== {label}", file=sys.stderr)
        halo_here = with_halo and n <= SIZES[args.halo_max]
        rows.append(bench_size(label, n, halo_here, args.jobs, n <= SIZES[args.single_max]))
        print(json.dumps(rows[-1], indent=1), file=sys.stderr)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
