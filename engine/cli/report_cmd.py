"""``halo report FINDINGS [--html]``: render ``report.md`` (and ``report.html``) again from a findings file.

The HTML page's trace viewer reads the traces the findings were made from (``dataset.files``, or
``--traces``) and the test outcomes beside the findings (``tests.jsonl``, or ``--tests``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.cli import check_input_paths, read_findings_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render report.md (and --html report.html) from a findings.json")
    p.add_argument("findings", type=Path, metavar="FINDINGS", help="a findings.json")
    p.add_argument("--out", type=Path, metavar="DIR", help="where to write (default: beside FINDINGS)")
    p.add_argument("--html", action="store_true", help="also write the self-contained report.html")
    p.add_argument("--tests", type=Path, metavar="FILE", help="tests.jsonl with outcomes (default: beside FINDINGS)")
    p.add_argument("--traces", type=Path, nargs="+", metavar="PATH",
                   help="the traces for the HTML viewer (default: the files the findings were made from)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.analysis.pipeline import read_tests_file
    from engine.publish.html import HtmlReport
    from engine.publish.outputs import MarkdownReport
    from engine.traces.problems import Problems

    findings = read_findings_arg(args.findings)
    out = args.out or args.findings.parent
    out.mkdir(parents=True, exist_ok=True)
    written = MarkdownReport().publish(findings, out)
    if args.html:
        tests_file = args.tests or args.findings.parent / "tests.jsonl"
        outcomes = read_tests_file(tests_file if tests_file.is_file() else None, Problems()).outcomes
        traces = args.traces or [Path(f) for f in findings.dataset.files if Path(f).is_file()]
        if args.traces:
            check_input_paths(args.traces)

        def load(trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
            from engine.traces.rows import view_rows
            from engine.traces.store import TraceStore

            return view_rows(TraceStore.open(traces), trace_ids) if traces else {}

        written.update(HtmlReport(outcomes, load).publish(findings, out))
    for name, path in written.items():
        print(f"halo: {name} -> {path}")
    return 0
