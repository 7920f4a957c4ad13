"""Fixtures for the GitHub publisher: the loopback fake API, an Actions environment, findings to publish."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_github import FakeGitHub
from pytest_httpserver import HTTPServer

from engine.findings import DatasetSummary, Evidence, FailureMode, Findings, Gate, GateEntry, LLMTotals
from engine.publish.github.client import ClientSettings

FAST = ClientSettings(total_retries=3, backoff_factor=0.0, secondary_rate_wait=0.0, max_rate_limit_wait=5.0,
                      timeout=10, seconds_between_requests=0.0, seconds_between_writes=0.0)
PLANTED_SECRET_ENV = "HALO_TEST_SERVICE_API_KEY"
PLANTED_SECRET = "planted-env-secret-9f8e7d6c5b4a"
PLANTED_OPENAI = "sk-proj-PLANTEDabcdefghijklmnop1234567890"


@pytest.fixture
def fake_github(httpserver: HTTPServer) -> FakeGitHub:
    return FakeGitHub(httpserver)


def make_findings(*, n_new: int = 1, baseline: bool = True, verdict: str | None = None,
                  evil: bool = True, n_persisting: int = 1, llm: bool = True) -> Findings:
    """Findings whose trace text carries an HTML image, a mention, a link and two secrets."""
    modes: list[FailureMode] = []
    new: list[GateEntry] = []
    persisting: list[GateEntry] = []
    for i in range(n_new + n_persisting):
        mid = f"fm-{i:012x}"
        example = (f"tool refund_order failed #{i}: <img src=x onerror=alert(1)> ping @mallory see "
                   f"https://evil.example/x?k={PLANTED_OPENAI} and token {PLANTED_SECRET}\n```\n</details>")
        modes.append(FailureMode(
            id=mid, title=(f"Tool refund_order errors <img src=x> @mallory #{i}" if evil else f"Tool errors {i}"),
            category="tool_error", detector="tool_errors", key=f"k{i}", run_count=3 + i, failing_test_count=2,
            test_count=3, trace_count=3, prevalence=(3 + i) / 40,
            evidence=[Evidence(trace_id="a" * 32, span_id="b" * 16, test_nodeid=f"tests/test_agent.py::test_refund[{j}]")
                      for j in range(3)],
            example=example if evil else "plain evidence",
            suggested_fix="Validate the order id before calling refund_order @mallory" if evil else "fix it",
        ))
        entry = GateEntry(id=mid, title=modes[-1].title, baseline_runs=0 if i < n_new else 2, baseline_total=40,
                          candidate_runs=3 + i, candidate_total=40, p_value=0.01)
        (new if i < n_new else persisting).append(entry)
    gate = Gate(
        baseline="baseline/findings.json" if baseline else None,
        new=new if baseline else [], persisting=persisting if baseline else [],
        resolved=[GateEntry(id="fm-resolved00001", title="old mode", baseline_runs=5, baseline_total=40)]
        if baseline else [],
        verdict=verdict or ("fail" if (baseline and n_new) else "pass"),
        failing_ids=[e.id for e in new] if baseline else [],
    )
    return Findings(
        dataset=DatasetSummary(spans=400, traces=40, tests=40, failing_tests=6, passing_tests=34, runs=40,
                               run_unit="tests"),
        failure_modes=modes, gate=gate,
        llm=LLMTotals(model="gpt-4o-mini", requests=3, tokens_in=1200, tokens_out=300, cost_usd=0.0123) if llm else None,
    )


def clean_findings() -> Findings:
    return Findings(
        dataset=DatasetSummary(spans=10, traces=40, tests=40, runs=40, run_unit="tests", passing_tests=40),
        gate=Gate(baseline="baseline/findings.json",
                  resolved=[GateEntry(id="fm-resolved00001", title="old", baseline_runs=5, baseline_total=40)]),
    )


@pytest.fixture
def actions_env(tmp_path: Path, fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, str]]:
    """An Actions environment for one event: writes the payload, summary and output files under tmp_path."""

    def build(event_name: str = "pull_request", *, pr: int = 7, fork: bool = False, head_sha: str = "c0ffee" * 6 + "abcd",
              base: str = "main", ref: str = "refs/pull/7/merge", extra: dict[str, Any] | None = None,
              token: str = "ghs_installationtokenvalue000000000000") -> dict[str, str]:
        repo = fake_github.repo
        head_repo = "forker/agent" if fork else repo
        if event_name in ("pull_request", "pull_request_target"):
            event: dict[str, Any] = {"pull_request": {
                "number": pr, "head": {"sha": head_sha, "ref": "feature", "repo": {"full_name": head_repo}},
                "base": {"ref": base, "repo": {"full_name": repo}}}}
        elif event_name == "push":
            event = {"after": head_sha, "ref": ref}
        else:
            event = {}
        event["repository"] = {"full_name": repo, "default_branch": "main"}
        event.update(extra or {})
        event_path = tmp_path / "event.json"
        event_path.write_text(json.dumps(event), encoding="utf-8")
        summary = tmp_path / "step_summary.md"
        output = tmp_path / "github_output"
        summary.touch()
        output.touch()
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": repo,
            "GITHUB_API_URL": fake_github.base_url,
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_WORKFLOW": "agent CI",
            "GITHUB_JOB": "halo",
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_SHA": head_sha,
            "GITHUB_REF": ref,
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_TOKEN": token,
            PLANTED_SECRET_ENV: PLANTED_SECRET,
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        return env

    return build
