"""``action.yml`` run locally, step by step, the way the runner would: bash scripts with the ``GITHUB_*``
variables, an event payload file, ``GITHUB_OUTPUT``/``GITHUB_STEP_SUMMARY`` files, against the fake API.

The ``uses:`` steps are the runner's own (setup-python, upload-artifact) and are simulated here:
an uploaded baseline becomes an artifact of a successful push run in the fake API. Both linters
(check-jsonschema's GitHub schemas and zizmor) must be clean on the action and the example workflows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PLANTED_SECRET, PLANTED_SECRET_ENV
from fake_github import BOT, FakeGitHub

REPO = Path(__file__).resolve().parents[4]
ACTION = REPO / "action.yml"
WORKFLOWS = sorted((REPO / "examples" / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent

SUITE = '''
import os

import pytest
from pytest_halo import trace_agent, trace_tool


@trace_tool
def fetch_page(url):
    if os.environ.get("GATE_FLAKY") and "flaky" in url:
        raise TimeoutError(os.environ["GATE_FLAKY"].format(url=url, key=os.environ.get("HALO_TEST_SERVICE_API_KEY")))
    return "<html>ok</html>"


def browse(url):
    with trace_agent("browser"):
        try:
            return fetch_page(url)
        except TimeoutError:
            return fetch_page(url.replace("flaky", "mirror"))


@pytest.mark.parametrize("url", ["https://a.test", "https://flaky.test/1", "https://flaky.test/2", "https://flaky.test/3"])
def test_browse(url):
    assert "ok" in browse(url)
'''


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (it is in the dev extra)")
    return path


def test_action_and_example_workflows_pass_both_linters() -> None:
    assert WORKFLOWS, "examples/.github/workflows/*.yml missing"
    for schema, files in (("vendor.github-actions", [ACTION]), ("vendor.github-workflows", WORKFLOWS)):
        r = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([_tool("zizmor"), "--offline", str(ACTION), *map(str, WORKFLOWS)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_inputs_reach_scripts_only_through_env_and_actions_are_pinned() -> None:
    action = yaml.safe_load(ACTION.read_text())
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step.get("name")
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    for wf in WORKFLOWS:
        doc = yaml.safe_load(wf.read_text())
        for job in doc["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), (wf.name, step)
                uses = step.get("uses", "")
                assert uses == "./" or re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses) or not uses, uses


# --- a local runner for the composite action -----------------------------------------------------

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class LocalRunner:
    """Runs action.yml's steps as the runner would, for one event."""

    def __init__(self, tmp: Path, fake: FakeGitHub, project: Path) -> None:
        self.tmp, self.fake, self.project = tmp, fake, project
        self.action = yaml.safe_load(ACTION.read_text())
        self.uploads: list[str] = []

    def _lookup(self, name: str, ctx: dict[str, Any]) -> str:
        name = name.strip()
        if name.startswith("'") and name.endswith("'"):
            return name[1:-1]
        if name == "always()":
            return "true"
        cur: Any = ctx
        for part in name.split("."):
            cur = cur.get(part, "") if isinstance(cur, dict) else ""
        return str(cur) if cur is not None else ""

    def _value(self, expr: str, ctx: dict[str, Any]) -> str:
        for alt in expr.split("||"):
            v = self._lookup(alt, ctx)
            if v:
                return v
        return ""

    def _cond(self, expr: str, ctx: dict[str, Any]) -> bool:
        for term in expr.split("&&"):
            if "==" in term:
                lhs, rhs = term.split("==")
                if self._value(lhs, ctx) != self._value(rhs, ctx):
                    return False
            elif self._value(term, ctx) in ("", "false"):
                return False
        return True

    def _sub(self, text: str, ctx: dict[str, Any]) -> str:
        return _EXPR.sub(lambda m: self._value(m.group(1), ctx), str(text))

    def run(self, event_name: str, event: dict[str, Any], inputs: dict[str, str], *, run_id: str,
            job_env: dict[str, str]) -> dict[str, Any]:
        event_path = self.tmp / f"event-{run_id}.json"
        event_path.write_text(json.dumps(event))
        summary = self.tmp / f"summary-{run_id}.md"
        summary.write_text("")
        runner_temp = self.tmp / f"runner-temp-{run_id}"
        runner_temp.mkdir()
        token = "ghs_installationtokenvalue000000000000"
        sha = (event.get("pull_request") or {}).get("head", {}).get("sha") or event.get("after", "0" * 40)
        github = {"token": token, "job": "halo", "event_name": event_name, "event": event}
        defaults = {k: str(v.get("default", "")) for k, v in self.action["inputs"].items()}
        ctx: dict[str, Any] = {"github": github, "steps": {}, "inputs": {}}
        ctx["inputs"] = {k: self._sub(v, ctx) for k, v in {**defaults, **inputs}.items()}
        base_env = {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(self.tmp), "LANG": "C.UTF-8",
            "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_REPOSITORY": self.fake.repo,
            "GITHUB_API_URL": self.fake.base_url, "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_RUN_ID": run_id, "GITHUB_WORKFLOW": "agent tests", "GITHUB_JOB": "halo",
            "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event_path), "GITHUB_SHA": sha,
            "GITHUB_REF": "refs/heads/main" if event_name == "push" else "refs/pull/7/merge",
            "GITHUB_WORKSPACE": str(self.project), "GITHUB_ACTION_PATH": str(REPO),
            "GITHUB_STEP_SUMMARY": str(summary), "RUNNER_TEMP": str(runner_temp), **job_env,
        }
        statuses: list[tuple[str, int]] = []
        for i, step in enumerate(self.action["runs"]["steps"]):
            name = step.get("name", "")
            if "if" in step and not self._cond(step["if"], ctx):
                continue
            outputs: dict[str, str] = {}
            if "uses" in step:
                outputs = self._uses(step, ctx)
            elif name == "Install pytest-halo and the project":
                assert "${GITHUB_ACTION_PATH}[${extras}]" in step["run"]  # the venv already holds it
            else:
                out_file = runner_temp / f"output-{i}"
                out_file.write_text("")
                env = {**base_env, "GITHUB_OUTPUT": str(out_file)}
                env.update({k: self._sub(v, ctx) for k, v in (step.get("env") or {}).items()})
                script = runner_temp / f"step-{i}.sh"
                script.write_text(step["run"])
                cwd = self.project / self._sub(step.get("working-directory", "."), ctx)
                r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=cwd,
                                   env=env, capture_output=True, text=True, timeout=180)
                statuses.append((name, r.returncode))
                (runner_temp / f"log-{i}.txt").write_text(r.stdout + r.stderr)
                if name != "Verdict":
                    assert r.returncode == 0, f"step {name!r} failed:\n{r.stdout}\n{r.stderr}"
                outputs = dict(line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line)
            if "id" in step:
                ctx["steps"][step["id"]] = {"outputs": outputs}
        return {"steps": ctx["steps"], "statuses": statuses, "summary": summary.read_text(),
                "logs": "\n".join(p.read_text() for p in sorted(runner_temp.glob("log-*.txt")))}

    def _uses(self, step: dict[str, Any], ctx: dict[str, Any]) -> dict[str, str]:
        uses = step["uses"]
        with_ = {k: self._sub(v, ctx) for k, v in (step.get("with") or {}).items()}
        if uses.startswith("actions/setup-python@"):
            return {}
        assert uses.startswith("actions/upload-artifact@"), uses
        name = with_["name"]
        self.uploads.append(name)
        if name.startswith("halo-report-"):  # published outputs only, never the raw traces
            assert "!agent/.halo/**/*.jsonl" in with_["path"].splitlines(), with_["path"]
        if name.startswith("halo-baseline-"):
            path = Path(with_["path"])
            files = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
            self.fake.add_run(branch="main", artifacts={name: files})
        return {"artifact-id": "555"}


def _project(tmp: Path) -> Path:
    project = tmp / "ws"
    (project / "agent").mkdir(parents=True)
    (project / "agent" / "test_browse.py").write_text(SUITE)
    (project / "agent" / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return project


def _pr_event(sha: str) -> dict[str, Any]:
    return {"pull_request": {"number": 7, "head": {"sha": sha, "repo": {"full_name": "octo/agent"}},
                             "base": {"ref": "main", "repo": {"full_name": "octo/agent"}}},
            "repository": {"full_name": "octo/agent", "default_branch": "main"}}


def _outside_code(md: str) -> str:
    md = re.sub(r"(?ms)^(`{3,})[^\n]*\n.*?^\1\s*$", "", md)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", md)


def test_action_steps_push_then_two_pr_runs_leave_one_comment(tmp_path, fake_github: FakeGitHub) -> None:
    project = _project(tmp_path)
    runner = LocalRunner(tmp_path, fake_github, project)
    inputs = {"working-directory": "agent", "check-run": "true", "pytest-args": "-q -p no:randomly"}
    secret_env = {PLANTED_SECRET_ENV: PLANTED_SECRET}
    push = {"after": "a" * 40, "ref": "refs/heads/main",
            "repository": {"full_name": "octo/agent", "default_branch": "main"}}

    main_run = runner.run("push", push, inputs, run_id="100", job_env=secret_env)
    assert main_run["steps"]["baseline"]["outputs"]["found"] == "false"
    assert main_run["steps"]["save"]["outputs"]["saved"] == "true"
    assert runner.uploads == ["halo-report-halo", "halo-baseline-halo"]
    assert main_run["statuses"][-1] == ("Verdict", 0)
    assert fake_github.comments == {}

    evil = "timed out fetching {url} <img src=x onerror=alert(1)> cc @mallory key {key} (first run)"
    first = runner.run("pull_request", _pr_event("b" * 40), inputs, run_id="201",
                       job_env={**secret_env, "GATE_FLAKY": evil})
    assert first["steps"]["baseline"]["outputs"]["found"] == "true"
    assert first["steps"]["publish"]["outputs"]["verdict"] == "fail"
    assert first["steps"]["publish"]["outputs"]["new-count"] == "1"
    assert first["statuses"][-1] == ("Verdict", 1)  # the gate's verdict fails the job, not the publish step

    second = runner.run("pull_request", _pr_event("c" * 40), inputs, run_id="202",
                        job_env={**secret_env, "GATE_FLAKY": evil.replace("first run", "second run")})
    assert second["statuses"][-1] == ("Verdict", 1)
    comments = fake_github.comments[7]
    assert len(comments) == 1 and comments[0]["user"]["login"] == BOT
    body = comments[0]["body"]
    assert body.startswith("❌ **pytest-halo: gate failed** — 1 new systemic failure mode")
    assert "second run" in body and "first run" not in body
    assert "actions/runs/202/artifacts/555" in body and "runs/201" not in body
    assert fake_github.calls("GET", r"^/user$") == 0

    checks = list(fake_github.check_runs.values())
    assert len(checks) == 3 and checks[-1]["head_sha"] == "c" * 40 and checks[-1]["conclusion"] == "failure"
    assert checks[-1]["annotations"] and checks[-1]["annotations"][0]["path"] == "agent/test_browse.py"
    published = {
        "comment": body, "summary": second["summary"], "check summary": checks[-1]["output"]["summary"],
        "annotations": json.dumps(checks[-1]["annotations"], ensure_ascii=False),
        "report.md": (project / "agent" / ".halo" / "report.md").read_text(),
    }
    for name in ("junit.xml", "findings.json"):  # in the report artifact too: redacted
        text = (project / "agent" / ".halo" / name).read_text()
        assert PLANTED_SECRET not in text and "second run" in text, name
    for where, text in published.items():
        assert PLANTED_SECRET not in text, where
        assert "@mallory" not in _outside_code(text), where
        assert re.search(r"(?<!\\)<img", _outside_code(text).replace("&lt;img", "")) is None, where
    assert "@mallory" not in published["annotations"] and "<img" not in published["annotations"]


def test_fork_pull_request_read_only_token_still_summarises(tmp_path, fake_github: FakeGitHub) -> None:
    project = _project(tmp_path)
    runner = LocalRunner(tmp_path, fake_github, project)
    fake_github.read_only = True
    event = _pr_event("d" * 40)
    event["pull_request"]["head"]["repo"]["full_name"] = "forker/agent"
    res = runner.run("pull_request", event, {"working-directory": "agent", "check-run": "true"}, run_id="300",
                     job_env={"GATE_FLAKY": "timed out fetching {url}"})
    assert res["steps"]["publish"]["outputs"]["verdict"] == "pass"  # no baseline: reported, not gated
    assert res["statuses"][-1] == ("Verdict", 0)
    assert res["summary"].startswith("ℹ️ **pytest-halo:") and "read-only" in res["summary"]
    assert "No baseline yet" in res["summary"]
    assert res["logs"].count("::warning title=pytest-halo::") == 2  # no baseline; read-only (comment and check run)
    assert fake_github.comments == {} and fake_github.check_runs == {}



def test_a_gated_run_without_findings_fails_closed(tmp_path, fake_github: FakeGitHub) -> None:
    """A baseline was in force but the analysis never produced a verdict: the job fails, it never passes ungated."""
    project = _project(tmp_path)
    runner = LocalRunner(tmp_path, fake_github, project)
    push = {"after": "a" * 40, "ref": "refs/heads/main",
            "repository": {"full_name": "octo/agent", "default_branch": "main"}}
    inputs = {"working-directory": "agent", "pytest-args": "-q -p no:randomly"}
    assert runner.run("push", push, inputs, run_id="400", job_env={})["statuses"][-1] == ("Verdict", 0)

    skipped = {**inputs, "pytest-args": "-q -p no:randomly --halo-skip-analysis"}
    res = runner.run("pull_request", _pr_event("e" * 40), skipped, run_id="401", job_env={})
    assert res["steps"]["pytest"]["outputs"] == {"exit-code": "0", "gated": "true"}
    assert res["steps"]["publish"]["outputs"]["verdict"] == "error"
    assert res["statuses"][-1] == ("Verdict", 1)
    assert "::error title=pytest-halo::the gate did not run" in res["logs"]

    ungated = {**skipped, "baseline": "none"}  # reporting without a gate on purpose stays green
    res = runner.run("pull_request", _pr_event("f" * 40), ungated, run_id="402", job_env={})
    assert "gated" not in res["steps"]["pytest"]["outputs"] and res["statuses"][-1] == ("Verdict", 0)
