"""``halo analyze PATH... --out DIR``: find systemic failure modes, write findings/report/junit, gate on a baseline.

Exit status: 0 gate passed, 1 gate failed, 2 usage or input error (nothing readable).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="find systemic failure modes in traces and gate against a baseline",
        description="Find systemic agent failure modes in traces (any supported format); write findings.json, "
        "report.md and junit.xml; exit 1 when the baseline gate fails.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="trace files or directories")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.add_argument("--baseline", type=Path, metavar="FILE", help="baseline findings.json to gate against")
    p.add_argument(
        "--fail-on",
        choices=("new", "regressed", "any", "never"),
        default="new",
        help="new: new systemic modes fail; regressed: new or significantly more prevalent; "
        "any: any systemic mode; never: report only (default: new)",
    )
    p.add_argument("--update-baseline", action="store_true", help="write these findings to --baseline")
    p.add_argument("--tests", type=Path, metavar="FILE", help="tests.jsonl with test outcomes and trace links")
    p.add_argument("--min-runs", type=int, help="runs a mode must recur in to be systemic (default 2)")
    p.add_argument("--min-prevalence", type=float, help="share of runs a mode must reach (default 0.002)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.analysis.config import AnalysisConfig
    from engine.run import AnalysisInputError, run_analysis

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(missing)}")
    if args.update_baseline and not args.baseline:
        raise UsageError("--update-baseline needs --baseline FILE")
    if args.tests is not None and not args.tests.is_file():
        raise UsageError(f"tests file not found: {args.tests}")
    overrides = {k: v for k, v in (("min_runs", args.min_runs), ("min_prevalence", args.min_prevalence)) if v is not None}
    try:
        config = AnalysisConfig(**overrides)
    except ValueError as exc:
        raise UsageError(str(exc).splitlines()[0]) from exc
    try:
        outcome = run_analysis(
            list(args.paths),
            args.out,
            baseline=args.baseline,
            fail_on=args.fail_on,
            update_baseline=args.update_baseline,
            tests_file=args.tests,
            config=config,
        )
    except AnalysisInputError as exc:
        raise UsageError(str(exc)) from exc
    except ValueError as exc:  # unreadable baseline
        raise UsageError(str(exc).splitlines()[0]) from exc
    for line in outcome.summary_lines:
        print(line)
    return outcome.exit_code
