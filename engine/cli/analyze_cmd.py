"""``halo analyze PATH... --out DIR``: find systemic failure modes, write findings/report/junit, gate on a baseline.

Exit status: 0 gate passed, 1 gate failed, 2 usage or input error (nothing readable).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli import UsageError, check_input_paths, silence_stdout
from engine.cli.detector_args import add_detector_args, analysis_extras
from engine.cli.llm_args import add_llm_arguments, build_reasoners, finish


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
    p.add_argument(
        "--baseline-traces",
        action="store_true",
        help="with --update-baseline: also keep the traces beside the baseline (NAME.traces.jsonl.gz, "
        "NAME.tests.jsonl.gz), so signatures found later are evaluated on them and can be gated as new",
    )
    p.add_argument("--tests", type=Path, metavar="FILE", help="tests.jsonl with test outcomes and trace links")
    p.add_argument("--jobs", type=int, metavar="N", help="processes for one large canonical JSONL input "
                   "(default: one per core for files of 1 GB or more, else 1)")
    add_detector_args(p)
    p.add_argument("--min-runs", type=int, help="runs a mode must recur in to be systemic (default 2)")
    p.add_argument("--min-prevalence", type=float, help="share of runs a mode must reach (default 0.002)")
    add_llm_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.analysis.baseline import BaselineError, check_baseline_path
    from engine.analysis.config import AnalysisConfig
    from engine.run import AnalysisInputError, run_analysis

    check_input_paths(args.paths)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.update_baseline and not args.baseline:
        raise UsageError("--update-baseline needs --baseline FILE")
    if args.baseline_traces and not args.update_baseline:
        raise UsageError("--baseline-traces needs --update-baseline (the traces are written with the baseline)")
    if args.baseline is not None:  # before any work: a baseline given but unusable fails the gate closed
        try:
            check_baseline_path(args.baseline, args.update_baseline)
        except BaselineError as exc:
            raise UsageError(str(exc)) from None
    if args.tests is not None:
        if not args.tests.exists():
            raise UsageError(f"tests file not found: {args.tests}")
        check_input_paths([args.tests])
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a directory")
    overrides = {k: v for k, v in (("min_runs", args.min_runs), ("min_prevalence", args.min_prevalence)) if v is not None}
    try:
        config = AnalysisConfig(**overrides)
    except ValueError as exc:
        raise UsageError(str(exc).splitlines()[0]) from exc
    reasoners = build_reasoners(args)
    try:
        outcome = run_analysis(
            list(args.paths),
            args.out,
            baseline=args.baseline,
            fail_on=args.fail_on,
            update_baseline=args.update_baseline,
            baseline_traces=args.baseline_traces,
            tests_file=args.tests,
            config=config,
            **analysis_extras(args),
            reasoners=reasoners,
            jobs=args.jobs,
        )
    except AnalysisInputError as exc:
        raise UsageError(str(exc)) from exc
    except ValueError as exc:  # unreadable baseline
        raise UsageError(str(exc).splitlines()[0]) from exc
    except OSError as exc:  # an output or the baseline could not be written
        raise UsageError(f"cannot write {exc.filename or args.out}: {exc.strerror or exc}") from exc
    try:
        for line in outcome.summary_lines:
            print(line, flush=True)
        llm_exit = finish(args, outcome, outcome.summary_lines)
    except BrokenPipeError:  # `| head`: the verdict still decides the exit status
        silence_stdout()
        llm_exit = None
    return llm_exit if llm_exit is not None else outcome.exit_code
