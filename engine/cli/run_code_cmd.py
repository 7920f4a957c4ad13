"""``halo run-code PATH... --code CODE``: run code in the sandbox over traces, print ``{exit_code, stdout, stderr, timed_out}``.

For debugging what the LLM engine's ``run_code`` tool sees: the same data file (a rollup row per
trace, the normalized spans of the selected traces) and the same limits. Traces are selected as the
tool selects them: ``--trace-id`` and/or ``--filter KEY=VALUE`` (the fields of ``query_traces``'
filters), resolved on the host and capped the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.cli import UsageError, check_input_paths

# TraceFilters fields that hold lists: their value is split on commas
_LIST_FILTERS = ("model_names", "service_names", "agent_names", "tool_names", "categories", "test_outcome")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run-code", help="run Python in the sandbox over traces (what the LLM's run_code sees)")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="trace files or directories (optional)")
    p.add_argument("--code", required=True, help="Python source, or - to read it from stdin")
    p.add_argument("--trace-id", action="append", default=[], metavar="ID",
                   help="also give the normalized spans of this trace (repeatable)")
    p.add_argument("--filter", dest="filters", action="append", default=[], metavar="KEY=VALUE",
                   help="also give the spans of the traces matching a query_traces filter (repeatable, ANDed): "
                   "has_errors=true, tool_names=a,b, categories=tool, test_outcome=failed, test_nodeid=SUBSTR, "
                   "agent_names/model_names/service_names=..., start_time_gte/end_time_lte=ISO, regex_pattern=RE")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per-call timeout (default 30)")
    p.set_defaults(func=run)


def parse_filters(items: Sequence[str]) -> Any:
    """``KEY=VALUE`` items → a ``TraceFilters`` (None when there are none); a bad one is a one-line ``UsageError``."""
    if not items:
        return None
    from pydantic import ValidationError

    from engine.traces.query_models import TraceFilters

    data: dict[str, Any] = {}
    for raw in items:
        key, sep, value = raw.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--filter {raw!r}: expected KEY=VALUE, e.g. has_errors=true")
        if key not in TraceFilters.model_fields:
            raise UsageError(f"--filter {raw!r}: unknown key {key!r}; known: {', '.join(TraceFilters.model_fields)}")
        data[key] = [v.strip() for v in value.split(",") if v.strip()] if key in _LIST_FILTERS else value
    try:
        return TraceFilters.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ())) or "filter"
        raise UsageError(f"--filter {where}: {err.get('msg', 'invalid')}") from None


def run(args: argparse.Namespace) -> int:
    from engine.sandbox import Sandbox, SandboxLimits, SandboxUnavailable, write_data

    code = sys.stdin.read() if args.code == "-" else args.code
    if args.paths:
        check_input_paths(args.paths)
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    filters = parse_filters(args.filters)
    if (filters is not None or args.trace_id) and not args.paths:
        raise UsageError("--trace-id and --filter select among the traces of PATH: give trace files")
    selected: dict[str, Any] | None = None
    store = None
    chosen: list[str] = []
    if args.paths:  # the selection first: a bad filter is a usage error before the sandbox boots
        from engine.llm.tools.run_code import select_traces
        from engine.traces.store import TraceStore

        store = TraceStore.open(args.paths)
        try:
            selection = select_traces(store, args.trace_id, filters)
        except ValueError as exc:
            raise UsageError(f"--filter: {str(exc).splitlines()[0][:300]}") from None
        chosen = selection.trace_ids
        if filters is not None or selection.note or selection.unknown:
            selected = selection.to_dict()

    async def go() -> dict[str, object]:
        async with Sandbox(SandboxLimits(timeout_s=args.timeout)) as box:
            if store is not None:
                from engine.traces.rows import rollup_rows, span_rows

                write_data(box.data_path, rollup_rows(store), span_rows(store, chosen))
            result = await box.run(code, with_data=store is not None)
            return result.to_dict()

    try:
        out = asyncio.run(go())
    except SandboxUnavailable as exc:
        raise UsageError(str(exc)) from None
    shown = {k: out[k] for k in ("exit_code", "stdout", "stderr", "timed_out")}
    if selected is not None:
        shown["selected"] = selected
    print(json.dumps(shown))
    return 0
