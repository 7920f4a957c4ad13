"""``halo github publish``: the sticky comment, the job summary, the check run and the step outputs.

Each target is tried on its own; what GitHub refuses (a fork's read-only token, a deleted PR, an
outage after retries) becomes one notice, shown in the log and in the job summary, and never a
failed job. The summary is written last so it carries those notices.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.findings import Findings
from engine.publish.github import checks, render, sticky
from engine.publish.github.client import PUBLISH_ERRORS, explain, is_read_only
from engine.publish.github.context import RunContext
from engine.publish.github.text import plain

SUMMARY_MAX_BYTES = 1024 * 1024 - 4096


@dataclass(frozen=True)
class PublishOptions:
    findings_path: Path
    comment_mode: str = "always"
    check_run: bool = False
    report_artifact_id: str | None = None
    tests_root: Path = Path(".")
    path_prefix: str = ""


@dataclass
class PublishResult:
    comment: str | None = None
    check_run_id: int | None = None
    summary_written: bool = False
    pr_number: int | None = None
    notices: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)


def step_outputs(f: Findings, findings_path: Path) -> dict[str, str]:
    findings_path = findings_path.resolve()
    report = findings_path.parent / "report.md"
    return {
        "verdict": f.gate.verdict,
        "new-count": str(len(f.gate.new)),
        "regressed-count": str(len(f.gate.regressed)),
        "findings-path": str(findings_path),
        "report-path": str(report) if report.is_file() else "",
    }


def write_outputs(path: Path | None, outputs: dict[str, str]) -> None:
    if path is None:
        return
    with path.open("a", encoding="utf-8") as fh:
        for k, v in outputs.items():
            fh.write(f"{k}={' '.join(v.split())}\n")


def _command_text(s: str) -> str:
    """Escape a workflow-command message (``%``, CR and LF would end or forge the command)."""
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def announce(notice: str) -> None:
    print(f"::warning title=pytest-halo::{_command_text(notice)}")


def announce_error(message: str) -> None:
    print(f"::error title=pytest-halo::{_command_text(message)}")


def find_pr(repo: Any, ctx: RunContext) -> int | None:
    """The PR to comment on. Under ``workflow_run`` a fork's PR is not listed in the event: it is looked up
    by the triggering run's head (``owner:branch``) and must carry that run's head commit."""
    if ctx.pr_number is not None:
        return ctx.pr_number
    wr = ctx.workflow_run
    if not wr or wr.get("event") not in ("pull_request", "pull_request_target") or not ctx.head_label:
        return None
    for pr in repo.get_pulls(state="open", head=ctx.head_label):
        if pr.head.sha == ctx.head_sha:
            return int(pr.number)
    return None


def _summary(f: Findings, links: render.Links, notices: list[str]) -> str:
    budget = render.SUMMARY_BUDGET
    while True:
        text = render.render(f, links=links, budget=budget, notices=notices).text
        if len(text.encode("utf-8")) <= SUMMARY_MAX_BYTES or budget < 10_000:
            return text
        budget //= 2


def publish(
    ctx: RunContext,
    f: Findings,
    opts: PublishOptions,
    make_client: Callable[[], Any],
) -> PublishResult:
    """Publish everything that can be; never raises for what GitHub refuses."""
    result = PublishResult(outputs=step_outputs(f, opts.findings_path))
    links = render.Links(run=ctx.run_url(), report=ctx.artifact_url(opts.report_artifact_id))
    write_outputs(ctx.output_file, result.outputs)
    wants_github = opts.comment_mode != "off" or opts.check_run
    repo = None
    if wants_github and not ctx.token:
        result.notices.append("no GitHub token (pass github-token): nothing published to the pull request")
    elif wants_github:
        repo = make_client().get_repo(ctx.repository)  # no request: the client is lazy (make_github)

    if repo is not None and opts.comment_mode != "off":
        _comment(repo, ctx, f, opts, links, result)
    if repo is not None and opts.check_run and result.comment != "read-only":  # one notice says it all
        _check_run(repo, ctx, f, opts, links, result)

    for n in result.notices:
        announce(n)
    if ctx.step_summary is not None:
        try:
            with ctx.step_summary.open("a", encoding="utf-8") as fh:
                fh.write(_summary(f, links, result.notices))
            result.summary_written = True
        except OSError as exc:
            print(f"halo github publish: cannot write the job summary: {exc}", file=sys.stderr)
    return result


def _comment(repo: Any, ctx: RunContext, f: Findings, opts: PublishOptions, links: render.Links,
             result: PublishResult) -> None:
    try:
        pr = find_pr(repo, ctx)
    except PUBLISH_ERRORS as exc:
        result.notices.append(explain(exc, "finding the pull request"))
        return
    result.pr_number = pr
    if pr is None:
        print("halo github publish: not a pull request run: no comment")
        return
    g = f.gate
    wanted = sticky.decide(
        opts.comment_mode,
        failed=g.verdict == "fail",
        all_clear=render.all_clear(f),
        changed=bool(g.new or g.regressed or g.resolved or g.emerging),
    )
    marker = ctx.marker()
    if wanted.kind == "all_clear":
        body = render.render_all_clear(f, links=links, footer=marker)
    else:
        body = render.render(f, links=links, budget=render.COMMENT_BUDGET, footer=marker).text
    try:
        result.comment = sticky.upsert(
            repo.get_issue(pr), marker=marker, author=ctx.comment_author, wanted=wanted, body=body,
            fallback=render.render_minimal(f, links=links, footer=marker),
        )
        print(f"halo github publish: comment {result.comment} on #{pr}")
    except PUBLISH_ERRORS as exc:
        what = f"comment{' and check run' if opts.check_run else ''} on #{pr}"
        result.notices.append(explain(exc, what))
        if is_read_only(exc):
            result.comment = "read-only"


def _check_run(repo: Any, ctx: RunContext, f: Findings, opts: PublishOptions, links: render.Links,
               result: PublishResult) -> None:
    if not ctx.head_sha:
        result.notices.append("check run: no head commit in the event (GITHUB_SHA unset)")
        return
    title = plain(render.verdict_line(f).replace("**", "").replace("`", ""), 255)
    summary = render.render(f, links=links, budget=render.CHECK_BUDGET).text
    notes = checks.annotations_for(f, opts.tests_root, opts.path_prefix)
    try:
        result.check_run_id = checks.publish_check_run(
            repo, f, head_sha=ctx.head_sha, title=title, summary=summary, notes=notes, details_url=links.run
        )
        print(f"halo github publish: check run {result.check_run_id} with {len(notes)} annotations")
    except PUBLISH_ERRORS as exc:
        result.notices.append(explain(exc, "check run"))
