"""``halo github publish`` against a loopback fake GitHub REST API through real PyGithub."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from conftest import FAST, PLANTED_OPENAI, PLANTED_SECRET, clean_findings, make_findings
from fake_github import BOT, FakeGitHub

from engine.findings import Evidence, Findings, GateEntry
from engine.publish.github import render
from engine.publish.github.client import make_github
from engine.publish.github.context import RunContext
from engine.publish.github.publish import PublishOptions, PublishResult, publish


def _publish(tmp_path: Path, fake: FakeGitHub, f: Findings, env: dict[str, str], **opts: object) -> PublishResult:
    path = tmp_path / ".halo" / "findings.json"
    path.parent.mkdir(exist_ok=True)
    f.write(path)
    ctx = RunContext.from_env(env)
    options = PublishOptions(findings_path=path, tests_root=tmp_path, **opts)  # type: ignore[arg-type]
    return publish(ctx, f, options, lambda: make_github(ctx.api_url, ctx.token, FAST))


def _ours(fake: FakeGitHub, pr: int = 7) -> list[dict]:
    return [c for c in fake.comments.get(pr, []) if "pytest-halo:sticky" in c["body"] and c["user"]["login"] == BOT]


def test_two_runs_leave_one_comment_with_the_second_runs_body(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    first = _publish(tmp_path, fake_github, make_findings(n_new=1), env)
    assert first.comment == "created"
    second = _publish(tmp_path, fake_github, make_findings(n_new=2), env)
    assert second.comment == "updated"
    ours = _ours(fake_github)
    assert len(ours) == 1 and len(fake_github.comments[7]) == 1
    body = ours[0]["body"]
    assert body.splitlines()[0].startswith("❌ **pytest-halo: gate failed** — 2 new")
    assert "#### New" in body and body.count("#### New:") == 2
    assert fake_github.calls("POST", r"/issues/7/comments$") == 1
    assert fake_github.calls("PATCH", r"/issues/comments/\d+$") == 1
    assert fake_github.calls("GET", r"^/user$") == 0


def test_finds_ours_beyond_the_first_100_comments(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    ctx = RunContext.from_env(env)
    for i in range(130):
        fake_github.add_comment(7, f"chatter {i}", "someone")
    mine = fake_github.add_comment(7, "old body\n" + ctx.marker(), BOT)
    for i in range(20):
        fake_github.add_comment(7, f"more chatter {i}", "someone")
    res = _publish(tmp_path, fake_github, make_findings(), env)
    assert res.comment == "updated"
    assert len(_ours(fake_github)) == 1 and _ours(fake_github)[0]["id"] == mine["id"]
    assert "old body" not in mine["body"]
    assert fake_github.calls("GET", r"/issues/7/comments$") >= 2  # followed the Link header to page 2
    assert fake_github.calls("POST", r"/issues/7/comments$") == 0


def test_marker_written_by_someone_else_is_left_alone(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    ctx = RunContext.from_env(env)
    forged = fake_github.add_comment(7, "forged\n" + ctx.marker(), "mallory")
    other_bot = fake_github.add_comment(7, "other bot\n" + ctx.marker(), "renovate[bot]")
    res = _publish(tmp_path, fake_github, make_findings(), env)
    assert res.comment == "created"
    assert forged["body"].startswith("forged") and other_bot["body"].startswith("other bot")
    assert len(fake_github.comments[7]) == 3 and len(_ours(fake_github)) == 1
    assert fake_github.calls("PATCH", rf"/issues/comments/({forged['id']}|{other_bot['id']})$") == 0
    assert fake_github.calls("DELETE", r"/issues/comments/") == 0


def test_another_job_keeps_its_own_comment(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    _publish(tmp_path, fake_github, make_findings(), env)
    other = dict(env, GITHUB_JOB="halo-py312")
    _publish(tmp_path, fake_github, make_findings(), other)
    assert len(_ours(fake_github)) == 2


def test_app_slug_is_the_comment_author(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    env["HALO_GITHUB_APP_SLUG"] = "halo-app"
    ctx = RunContext.from_env(env)
    fake_github.add_comment(7, "mine\n" + ctx.marker(), "halo-app[bot]")
    assert ctx.comment_author == "halo-app[bot]"
    # the fake writes as github-actions[bot]; the app's own comment is the one edited
    res = _publish(tmp_path, fake_github, make_findings(), env)
    assert res.comment == "updated"


def test_fork_token_is_read_only_no_crash_summary_and_one_notice(tmp_path, fake_github, actions_env, capsys) -> None:
    env = actions_env(fork=True)
    fake_github.read_only = True
    res = _publish(tmp_path, fake_github, make_findings(), env, check_run=True)
    assert res.comment == "read-only" and res.check_run_id is None
    assert fake_github.comments.get(7, []) == [] and fake_github.calls("POST", r"/check-runs$") == 0
    assert res.summary_written
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert summary.startswith("❌ **pytest-halo: gate failed**")
    assert "read-only" in summary and "workflow\\_run" not in summary.split("read-only")[0][-5:]
    out = capsys.readouterr().out
    assert out.count("::warning title=pytest-halo::") == 1  # one notice for the comment and the check run
    assert "comment and check run on #7" in out
    assert "Resource not accessible by integration" in out
    outputs = Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8")
    assert "verdict=fail\n" in outputs and "new-count=1\n" in outputs


def test_404_on_the_pull_request_is_a_notice(tmp_path, fake_github, actions_env, capsys) -> None:
    env = actions_env()
    fake_github.fault("GET", r"/issues/7/comments$", 404, "Not Found")
    res = _publish(tmp_path, fake_github, make_findings(), env)
    assert res.comment is None and any("404" in n for n in res.notices)
    assert res.summary_written


def test_422_body_too_long_falls_back_to_the_short_body(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    fake_github.max_body = 1500
    res = _publish(tmp_path, fake_github, make_findings(n_new=3), env)
    assert res.comment == "created"
    body = _ours(fake_github)[0]["body"]
    assert len(body) <= 1500 and body.startswith("❌ **pytest-halo: gate failed**")
    assert "did not fit" in body and RunContext.from_env(env).marker() in body


def test_5xx_is_retried_and_posts_once(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    fake_github.fault("GET", r"/issues/7/comments$", 502, "Bad Gateway")
    fake_github.fault("POST", r"/issues/7/comments$", 503, "Service Unavailable")
    res = _publish(tmp_path, fake_github, make_findings(), env)
    assert res.comment == "created" and len(fake_github.comments[7]) == 1
    assert fake_github.calls("POST", r"/issues/7/comments$") == 2


def test_5xx_that_persists_is_a_notice_not_a_crash(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    fake_github.fault("GET", r"/issues/7/comments$", 500, "boom", times=50)
    res = _publish(tmp_path, fake_github, make_findings(), env)
    assert res.comment is None and res.notices and res.summary_written


def test_secondary_rate_limit_waits_retry_after(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    fake_github.fault("POST", r"/issues/7/comments$", 403,
                      "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                      headers={"Retry-After": "1"})
    t0 = time.monotonic()
    res = _publish(tmp_path, fake_github, make_findings(), env)
    assert res.comment == "created" and len(fake_github.comments[7]) == 1
    assert time.monotonic() - t0 >= 1.0


def test_comment_modes(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    # failures: no comment while passing; one while failing; deleted when it passes again
    assert _publish(tmp_path, fake_github, clean_findings(), env, comment_mode="failures").comment == "skipped"
    assert _publish(tmp_path, fake_github, make_findings(), env, comment_mode="failures").comment == "created"
    assert _publish(tmp_path, fake_github, clean_findings(), env, comment_mode="failures").comment == "deleted"
    assert _ours(fake_github) == []
    # changes: nothing changed and no comment yet -> none; a change -> one
    same = make_findings(n_new=0)
    same.gate.resolved = []
    assert _publish(tmp_path, fake_github, same, env, comment_mode="changes").comment == "skipped"
    assert _publish(tmp_path, fake_github, make_findings(), env, comment_mode="changes").comment == "created"
    # always: collapses to all clear when nothing systemic remains
    assert _publish(tmp_path, fake_github, clean_findings(), env, comment_mode="always").comment == "updated"
    body = _ours(fake_github)[0]["body"]
    assert body.startswith("✅ **pytest-halo: all clear**") and "1 failure mode(s) resolved" in body
    # off: leaves it alone
    n = len(fake_github.log)
    assert _publish(tmp_path, fake_github, make_findings(), env, comment_mode="off").comment is None
    assert len(fake_github.log) == n


def test_check_run_annotations_are_batched_by_50(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    tests_dir = tmp_path / "tests"
    tests_dir.mkdir()
    (tests_dir / "test_agent.py").write_text("".join(f"\n\ndef test_case_{i}():\n    pass\n" for i in range(120)))
    f = make_findings(n_new=1)
    f.failure_modes[0].evidence = [Evidence(trace_id="a" * 32, test_nodeid=f"tests/test_agent.py::test_case_{i}[x]")
                                   for i in range(120)]
    res = _publish(tmp_path, fake_github, f, env, check_run=True, path_prefix="./agent/")
    run = fake_github.check_runs[res.check_run_id]  # type: ignore[index]
    assert run["requests"] == 3 and len(run["annotations"]) == 120
    assert fake_github.calls("POST", r"/check-runs$") == 1 and fake_github.calls("PATCH", r"/check-runs/\d+$") == 2
    first = run["annotations"][0]
    assert first["path"] == "agent/tests/test_agent.py" and first["start_line"] == 3
    assert run["annotations"][5]["start_line"] == 3 + 5 * 4
    assert run["conclusion"] == "failure" and run["head_sha"] == env["GITHUB_SHA"]
    assert first["annotation_level"] == "failure"


def test_annotation_lines_never_open_a_fifo_named_by_a_node_id(tmp_path) -> None:
    """A FIFO where a node id's file should be is not opened (it would block): the annotation falls back to line 1."""
    import os

    from engine.publish.github.checks import annotations_for

    (tmp_path / "tests").mkdir()
    os.mkfifo(tmp_path / "tests" / "test_agent.py")
    f = make_findings(n_new=1)
    notes = annotations_for(f, tmp_path)
    assert notes and {(n["path"], n["start_line"]) for n in notes} == {("tests/test_agent.py", 1)}

def _outside_code(md: str) -> str:
    md = re.sub(r"(?ms)^(`{3,})[^\n]*\n.*?^\1\s*$", "", md)  # fenced blocks
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", md)  # code spans


def test_planted_secret_image_and_mention_appear_in_no_published_text(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    f = make_findings(n_new=2)
    _publish(tmp_path, fake_github, f, env, check_run=True)
    comment = _ours(fake_github)[0]["body"]
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    run = next(iter(fake_github.check_runs.values()))
    check_md = run["output"]["summary"] + "\n" + run["output"]["title"]
    annotations = "\n".join(a["title"] + "\n" + a["message"] for a in run["annotations"])
    assert annotations
    for text in (comment, summary, check_md, annotations):
        assert PLANTED_SECRET not in text and PLANTED_OPENAI not in text
    for md in (comment, summary, check_md):
        prose = _outside_code(md)
        assert "evil.example" not in prose  # a trace's URL is shown only as code, never a link
        assert re.search(r"(?<!\\)<img", prose) is None
        assert "@mallory" not in prose and "#1" not in prose.replace("#​1", "")
        targets = re.findall(r"\]\(([^)]*)\)", prose)
        assert all(t.startswith("https://github.example/octo/agent/actions/runs/4242") for t in targets), targets
        assert md.count("```") % 2 == 0
    assert "<img" not in annotations and "@mallory" not in annotations and "https://" not in annotations


def test_comment_body_stays_under_the_limit_with_fences_closed(tmp_path, fake_github, actions_env) -> None:
    env = actions_env()
    f = make_findings(n_new=300, n_persisting=0)
    for m in f.failure_modes:
        m.example = ("x" * 300 + "\n````\n") * 10
    _publish(tmp_path, fake_github, f, env)
    body = _ours(fake_github)[0]["body"]
    assert len(body) <= render.COMMENT_LIMIT
    assert "more new or regressed mode(s) in the full report" in body
    fences = re.findall(r"(?m)^(`{3,})", body)
    assert len(fences) % 2 == 0
    assert body.rstrip().endswith(RunContext.from_env(env).marker())


def test_workflow_run_finds_the_fork_pr_by_head_and_sha(tmp_path, fake_github, actions_env) -> None:
    wr = {"id": 999, "event": "pull_request", "head_sha": "f00d" * 10, "head_branch": "feature",
          "pull_requests": [], "head_repository": {"full_name": "forker/agent", "owner": {"login": "forker"}}}
    env = actions_env("workflow_run", extra={"workflow_run": wr})
    fake_github.add_pull(12, "f00d" * 10, "forker:feature")
    fake_github.add_pull(13, "beef" * 10, "forker:feature")  # same label, other commit: not ours
    res = _publish(tmp_path, fake_github, make_findings(), env, check_run=True)
    assert res.pr_number == 12 and res.comment == "created" and len(_ours(fake_github, 12)) == 1
    assert "actions/runs/999" in _ours(fake_github, 12)[0]["body"]
    assert next(iter(fake_github.check_runs.values()))["head_sha"] == "f00d" * 10


def test_workflow_run_with_no_matching_pr_comments_nowhere(tmp_path, fake_github, actions_env) -> None:
    wr = {"id": 999, "event": "pull_request", "head_sha": "f00d" * 10, "head_branch": "feature",
          "pull_requests": [], "head_repository": {"full_name": "forker/agent", "owner": {"login": "forker"}}}
    env = actions_env("workflow_run", extra={"workflow_run": wr})
    fake_github.add_pull(13, "beef" * 10, "forker:feature")
    res = _publish(tmp_path, fake_github, make_findings(), env)
    assert res.pr_number is None and fake_github.comments == {}


def test_push_event_writes_summary_and_no_comment(tmp_path, fake_github, actions_env) -> None:
    env = actions_env("push", ref="refs/heads/main")
    res = _publish(tmp_path, fake_github, make_findings(baseline=False), env)
    assert res.comment is None and fake_github.comments == {}
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert summary.startswith("ℹ️ **pytest-halo: 2 systemic failure mode(s), not gated**")
    assert "No baseline yet" in summary


@pytest.mark.parametrize("mode", ["always", "failures"])
def test_cli_exits_zero_when_github_refuses_and_two_on_usage_errors(tmp_path, fake_github, actions_env,
                                                                   monkeypatch, mode) -> None:
    from engine.cli import main

    actions_env(fork=True)
    fake_github.read_only = True
    path = tmp_path / "findings.json"
    make_findings().write(path)
    monkeypatch.chdir(tmp_path)
    assert main(["github", "publish", "--findings", str(path), "--comment-mode", mode, "--check-run"]) == 0
    assert main(["github", "publish", "--findings", str(tmp_path / "missing.json")]) == 2
    monkeypatch.delenv("GITHUB_REPOSITORY")
    assert main(["github", "publish", "--findings", str(path)]) == 2


def test_job_summary_stays_under_one_mebibyte(tmp_path, fake_github, actions_env) -> None:
    env = actions_env("push", ref="refs/heads/feature")
    f = make_findings(n_new=2500, n_persisting=0, llm=False)
    for m in f.failure_modes:
        m.example = "é" * 2000
    res = _publish(tmp_path, fake_github, f, env)
    size = len(Path(env["GITHUB_STEP_SUMMARY"]).read_bytes())
    assert res.summary_written and 500_000 < size <= 1024 * 1024


def test_baseline_modes_not_re_run_are_counted_apart_and_never_all_clear() -> None:
    f = clean_findings()  # nothing systemic now; one baseline mode resolved
    assert render.all_clear(f)
    f.gate.not_rerun = [GateEntry(id="fm-notrerun00001", title="other", baseline_runs=4, baseline_total=40)]
    assert not render.all_clear(f), "a mode whose tests did not run is not known to be gone"
    body = render.render(f, links=render.Links(), budget=render.COMMENT_BUDGET).text
    assert "1 resolved" in body and "1 not re-run" in body and "**Not re-run** (none of their tests ran): 1" in body
