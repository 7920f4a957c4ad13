"""`halo index PATH... [--json] [--cache-dir DIR] [--no-cache] [--jobs N]`: index trace files, report what was read.

Exit 0 when any span was read; 2 (one line on stderr) when nothing could be: missing
files, empty files, or files whose every line was bad.
"""

from __future__ import annotations

import argparse
import sys
import time

import orjson

from engine.cli import UsageError, check_input_paths


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "index",
        help="index trace files (any supported format) and report spans, traces and bad input",
        description="Build or reuse the cached index of each trace file and report what was read.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="trace files or directories")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.add_argument("--cache-dir", metavar="DIR", help="index cache directory (default: $HALO_CACHE_DIR, "
                   "$XDG_CACHE_HOME/pytest-halo or ~/.cache/pytest-halo)")
    p.add_argument("--no-cache", action="store_true", help="build in memory; read and write no cache")
    p.add_argument("--jobs", type=int, metavar="N", help="processes for a cold index of a large file "
                   "(default: one per core for files over 64 MB, else 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.traces.store import TraceStore

    check_input_paths(args.paths, allow_missing=True)  # a FIFO input would hang the first read
    t0 = time.perf_counter()
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    store = TraceStore.open(args.paths, cache_dir=args.cache_dir, use_cache=not args.no_cache, jobs=args.jobs)
    report = store.report()
    report["seconds"] = round(time.perf_counter() - t0, 3)
    if report["spans"] == 0:
        raise UsageError(_nothing_read(report))
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(
        f"{report['spans']:,} spans in {report['traces']:,} traces "
        f"({report['error_spans']:,} error spans) from {len(report['files'])} file(s) in {report['seconds']}s"
    )
    for f in report["files"]:
        extra = f", {f['skipped']:,} skipped" if f["skipped"] else ""
        print(f"  {f['path']}: {f['format']}, {f['spans']:,} spans, {f['traces']:,} traces{extra} [{f['index']}]")
    if report["skipped_lines"]:
        print("  skipped: " + ", ".join(f"{k}={v:,}" for k, v in report["skipped_lines"].items()))
    if report["repaired"]:
        print("  repaired: " + ", ".join(f"{k}={v:,}" for k, v in report["repaired"].items()))
    for e in report["examples"][:5]:
        print(f"    {e}")
    return 0


def _nothing_read(report: dict) -> str:
    """One line saying why no span could be read."""
    files = report["files"]
    if not files:
        return "no trace files found"
    missing = [f["path"] for f in files if "unreadable_file" in f["skipped_by_reason"]]
    if missing and len(missing) == len(files):
        return f"cannot read {', '.join(missing[:3])}" + (" …" if len(missing) > 3 else "")
    if report["skipped_lines"]:
        reasons = ", ".join(f"{k}={v}" for k, v in report["skipped_lines"].items())
        return f"no valid spans in {len(files)} file(s): every record was skipped ({reasons})"
    return f"no spans in {len(files)} file(s): empty or not trace data"
