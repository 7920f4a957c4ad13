"""`halo convert PATH... -o OUT.jsonl`: any supported trace format → canonical JSONL (halo-engine compatible).

Prints one summary line on stderr (spans written, files, skipped and repaired by reason).
Exit 0 when spans were written; 2 (one ``error:`` line, no output file) when nothing could be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli import UsageError, check_input_paths
from engine.safe_io import UnsafePathError, check_regular_output
from engine.traces.ingest import FORMATS, convert, expand_paths


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert trace files (OTLP/JSON, OTel SDK, Agents SDK, tau-bench, SWE-agent, Langfuse, Phoenix...) "
        "to canonical JSONL",
    )
    p.add_argument("paths", nargs="+", help="trace files or directories (gzip is read transparently)")
    p.add_argument("-o", "--output", required=True, help="canonical JSONL file to write")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="force the input format instead of detecting it per file",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    p.add_argument("--json", action="store_true", help="print per-file stats and problems as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_input_paths(args.paths, allow_missing=True)  # a FIFO input would hang the first read
    files = expand_paths(args.paths)
    missing = [str(p) for p in files if not p.exists()]
    if not files:
        raise UsageError("no trace files found in " + ", ".join(args.paths))
    if len(missing) == len(files):
        raise UsageError(f"no such file: {missing[0]}")
    out = Path(args.output)
    try:
        check_regular_output(out)  # replace only a regular file: never a symlink's target, a FIFO or a device
    except UnsafePathError as exc:
        raise UsageError(str(exc)) from None
    if out.resolve() in {p.resolve() for p in files if p.exists()}:
        raise UsageError(f"output {out} is also an input")
    formats = {str(p): args.format for p in files} if args.format else None
    try:
        stats = convert(files, out, formats=formats)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from exc
    if stats.spans == 0:  # nothing readable: no empty output pretending to be a result
        out.unlink(missing_ok=True)
        for example in stats.problems.examples[:5]:
            print(f"  {example}", file=sys.stderr)
        raise UsageError(f"no spans could be read: {stats.summary()}")
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2))
    if not args.quiet:
        print(f"halo convert: wrote {out}: {stats.summary()}", file=sys.stderr)
        for example in stats.problems.examples[:5]:
            print(f"  {example}", file=sys.stderr)
    return 0
