"""``halo run-code PATH... --code CODE``: run code in the sandbox over traces, print ``{exit_code, stdout, stderr, timed_out}``.

For debugging what the LLM engine's ``run_code`` tool sees: the same data file (a rollup row per
trace, the normalized spans of ``--trace-id`` traces) and the same limits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from engine.cli import UsageError, check_input_paths


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run-code", help="run Python in the sandbox over traces (what the LLM's run_code sees)")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="trace files or directories (optional)")
    p.add_argument("--code", required=True, help="Python source, or - to read it from stdin")
    p.add_argument("--trace-id", action="append", default=[], metavar="ID",
                   help="also give the normalized spans of this trace (repeatable)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per-call timeout (default 30)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.sandbox import Sandbox, SandboxLimits, SandboxUnavailable, write_data

    code = sys.stdin.read() if args.code == "-" else args.code
    if args.paths:
        check_input_paths(args.paths)
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")

    async def go() -> dict[str, object]:
        async with Sandbox(SandboxLimits(timeout_s=args.timeout)) as box:
            if args.paths:
                from engine.traces.rows import rollup_rows, span_rows
                from engine.traces.store import TraceStore

                store = TraceStore.open(args.paths)
                write_data(box.data_path, rollup_rows(store), span_rows(store, args.trace_id))
            result = await box.run(code, with_data=bool(args.paths))
            return result.to_dict()

    try:
        out = asyncio.run(go())
    except SandboxUnavailable as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps({k: out[k] for k in ("exit_code", "stdout", "stderr", "timed_out")}))
    return 0
