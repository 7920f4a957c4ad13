"""``halo github publish | baseline save | baseline fetch``: the GitHub Action's steps, runnable anywhere.

Exit status: 0 when done, or when GitHub refused for a reason the notice explains (a fork's
read-only token, no baseline yet); 2 for our own usage errors (no findings file, not in Actions).
The verdict is the analysis's exit status, never this command's.
"""

from __future__ import annotations

import argparse
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli import UsageError, read_findings_arg

EXIT_BASELINE_UNREADABLE = 3  # a baseline exists (or may) but cannot be read: the gate fails closed

if TYPE_CHECKING:
    from engine.publish.github.context import RunContext

DEFAULT_FINDINGS = Path(".halo/findings.json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("github", help="publish findings to GitHub and keep the baseline per branch",
                       description="GitHub Actions integration: sticky PR comment, job summary, check run, "
                       "baseline artifacts. Reads GITHUB_* variables and the event payload.")
    gsub = p.add_subparsers(dest="github_command", required=True)

    pub = gsub.add_parser("publish", help="comment on the PR, write the job summary, create a check run")
    pub.add_argument("--findings", type=Path, default=DEFAULT_FINDINGS, metavar="PATH",
                     help="findings.json (default .halo/findings.json)")
    pub.add_argument("--comment-mode", choices=("always", "changes", "failures", "off"), default="always",
                     help="always: every run; changes: when the gate saw a change; failures: only while the "
                     "gate fails (deleted after); off: no comment (default always)")
    pub.add_argument("--check-run", action="store_true", help="also create a check run with annotations")
    pub.add_argument("--report-artifact-id", default=os.environ.get("HALO_REPORT_ARTIFACT_ID") or None,
                     metavar="ID", help="id of the uploaded report artifact, to link it")
    pub.add_argument("--path-prefix", default=os.environ.get("HALO_PATH_PREFIX", ""), metavar="DIR",
                     help="the pytest rootdir relative to the repository (the action's working-directory)")
    pub.set_defaults(func=run_publish)

    base = gsub.add_parser("baseline", help="save or fetch the baseline artifact")
    bsub = base.add_subparsers(dest="baseline_command", required=True)
    save = bsub.add_parser("save", help="stage the baseline for upload (pushes to the default branch only)")
    save.add_argument("--findings", type=Path, default=DEFAULT_FINDINGS, metavar="PATH")
    save.add_argument("--out", type=Path, default=Path(".halo-baseline-upload"), metavar="DIR")
    save.add_argument("--include-traces", action="store_true", help="also keep traces.jsonl and tests.jsonl")
    save.add_argument("--any-branch", action="store_true", help="save even when not a push to the default branch")
    save.set_defaults(func=run_baseline_save)
    fetch = bsub.add_parser("fetch", help="download the base branch's newest baseline artifact")
    fetch.add_argument("--out", type=Path, default=Path(".halo-baseline"), metavar="DIR")
    fetch.add_argument("--branch", help="branch whose baseline to use (default: the PR's base, else the default)")
    fetch.set_defaults(func=run_baseline_fetch)


def _context() -> RunContext:
    from engine.publish.github.context import ContextError, RunContext

    try:
        return RunContext.from_env(os.environ)
    except ContextError as exc:
        raise UsageError(str(exc)) from exc


def run_publish(args: argparse.Namespace) -> int:
    from engine.publish.github.client import make_github
    from engine.publish.github.publish import PublishOptions, publish

    ctx = _context()
    findings = read_findings_arg(args.findings)
    opts = PublishOptions(
        findings_path=args.findings,
        comment_mode=args.comment_mode,
        check_run=args.check_run,
        report_artifact_id=args.report_artifact_id,
        tests_root=Path("."),
        path_prefix=args.path_prefix,
    )
    publish(ctx, findings, opts, lambda: make_github(ctx.api_url, ctx.token))
    return 0


def run_baseline_save(args: argparse.Namespace) -> int:
    from engine.publish.github.baseline import artifact_name, stage
    from engine.publish.github.publish import write_outputs

    ctx = _context()
    if not ctx.is_default_branch_push and not args.any_branch:
        print(f"halo github baseline save: not a push to {ctx.default_branch}: no baseline saved")
        write_outputs(ctx.output_file, {"saved": "false"})
        return 0
    read_findings_arg(args.findings)  # refuse to save something unreadable
    staged = stage(args.findings, args.out, include_traces=args.include_traces)
    name = artifact_name(ctx.job_slug())
    write_outputs(ctx.output_file, {"saved": "true", "name": name, "dir": str(args.out)})
    print(f"halo github baseline save: staged {', '.join(p.name for p in staged)} in {args.out} as {name}")
    return 0


def run_baseline_fetch(args: argparse.Namespace) -> int:
    from engine.publish.github.baseline import FINDINGS, artifact_name, fetch
    from engine.publish.github.client import PUBLISH_ERRORS, explain, make_github
    from engine.publish.github.publish import announce, announce_error, write_outputs

    ctx = _context()
    branch = args.branch or ctx.base_branch
    name = artifact_name(ctx.job_slug())
    how = (f"no baseline yet for {branch}: this run reports without gating. Run the action on a push to "
           f"{branch} (baseline: artifact) to save one.")
    if not ctx.token:
        announce("baseline fetch: no GitHub token (pass github-token); " + how)
        write_outputs(ctx.output_file, {"found": "false"})
        return 0
    errors: tuple[type[BaseException], ...] = (*PUBLISH_ERRORS, zipfile.BadZipFile, ValueError, OSError)
    try:
        found = fetch(make_github(ctx.api_url, ctx.token), ctx.repository, token=ctx.token, branch=branch, name=name, out_dir=args.out)
    except errors as exc:  # the gate fails closed: a baseline we could not read never becomes "no baseline"
        announce_error(explain(exc, "baseline fetch") + "; the gate cannot run, so this step fails. Grant the "
                       "workflow `actions: read`, or set `baseline: none` to report without gating")
        write_outputs(ctx.output_file, {"found": "false"})
        return EXIT_BASELINE_UNREADABLE
    if found is None:
        announce(how)
        write_outputs(ctx.output_file, {"found": "false"})
        return 0
    path = args.out / FINDINGS
    write_outputs(ctx.output_file, {"found": "true", "path": str(path), "run-id": str(found.run_id)})
    print(f"halo github baseline fetch: {branch} baseline from run {found.run_id} ({found.head_sha[:12]}) in {path}")
    return 0
