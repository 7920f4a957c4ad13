"""What the Actions runner tells a step about its run: the ``GITHUB_*`` variables and the event payload.

Read once, at the edge, into a frozen value; everything else receives it. The event payload
is read from ``GITHUB_EVENT_PATH`` (``pull_request``, ``pull_request_target``, ``push``,
``workflow_run``, anything else as "no pull request").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_SERVER_URL = "https://github.com"
DEFAULT_BOT = "github-actions[bot]"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class ContextError(ValueError):
    """The environment does not describe a GitHub Actions run we can publish for (a usage error)."""


def _dig(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


@dataclass(frozen=True)
class RunContext:
    """One workflow run's identity and event, as the runner describes it."""

    repository: str
    api_url: str = DEFAULT_API_URL
    server_url: str = DEFAULT_SERVER_URL
    run_id: str = ""
    workflow: str = ""
    job: str = ""
    event_name: str = ""
    event: dict[str, Any] = field(default_factory=dict)
    sha: str = ""
    ref: str = ""
    token: str = ""
    step_summary: Path | None = None
    output_file: Path | None = None
    comment_author: str = DEFAULT_BOT

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunContext:
        repo = env.get("GITHUB_REPOSITORY", "")
        if not _REPO.match(repo):
            raise ContextError("GITHUB_REPOSITORY is not set to owner/name (run inside GitHub Actions or set it)")
        event: dict[str, Any] = {}
        event_path = env.get("GITHUB_EVENT_PATH", "")
        if event_path:
            try:
                loaded = json.loads(Path(event_path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ContextError(f"cannot read the event payload {event_path}: {exc}") from exc
            event = loaded if isinstance(loaded, dict) else {}
        slug = env.get("HALO_GITHUB_APP_SLUG", "").strip()
        return cls(
            repository=repo,
            api_url=(env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
            server_url=(env.get("GITHUB_SERVER_URL") or DEFAULT_SERVER_URL).rstrip("/"),
            run_id=env.get("GITHUB_RUN_ID", ""),
            workflow=env.get("GITHUB_WORKFLOW", ""),
            job=env.get("HALO_JOB_KEY") or env.get("GITHUB_JOB", ""),  # a key per matrix leg
            event_name=env.get("GITHUB_EVENT_NAME", ""),
            event=event,
            sha=env.get("GITHUB_SHA", ""),
            ref=env.get("GITHUB_REF", ""),
            token=env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or "",
            step_summary=Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None,
            output_file=Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
            comment_author=f"{slug.removesuffix('[bot]')}[bot]" if slug else DEFAULT_BOT,
        )

    # --- the pull request this run is about ---------------------------------------------------
    @property
    def workflow_run(self) -> dict[str, Any]:
        wr = self.event.get("workflow_run") if self.event_name == "workflow_run" else None
        return wr if isinstance(wr, dict) else {}

    @property
    def pr_number(self) -> int | None:
        """The PR from the event; for ``workflow_run`` only when GitHub listed it (not for forks)."""
        n = _dig(self.event, "pull_request", "number")
        if n is None and self.workflow_run:
            prs = self.workflow_run.get("pull_requests") or []
            n = _dig(prs[0], "number") if prs and isinstance(prs[0], dict) else None
        return n if isinstance(n, int) and n > 0 else None

    @property
    def head_sha(self) -> str:
        """The commit the results belong to (a PR's head, the triggering run's head, else ``GITHUB_SHA``)."""
        sha = _dig(self.event, "pull_request", "head", "sha") or self.workflow_run.get("head_sha")
        return str(sha) if sha else self.sha

    @property
    def head_label(self) -> str | None:
        """``owner:branch`` of the triggering run's head, to find a fork's PR (``workflow_run`` only)."""
        owner = _dig(self.workflow_run, "head_repository", "owner", "login")
        branch = self.workflow_run.get("head_branch")
        return f"{owner}:{branch}" if owner and branch else None

    @property
    def default_branch(self) -> str:
        return str(_dig(self.event, "repository", "default_branch") or "main")

    @property
    def base_branch(self) -> str:
        """The branch whose baseline a run compares against: the PR's base, else the default branch."""
        return str(_dig(self.event, "pull_request", "base", "ref") or self.default_branch)

    @property
    def is_default_branch_push(self) -> bool:
        return self.event_name == "push" and self.ref == f"refs/heads/{self.default_branch}"

    # --- our links and identity --------------------------------------------------------------
    @property
    def results_run_id(self) -> str:
        """The run that produced the findings (the triggering run under ``workflow_run``)."""
        rid = self.workflow_run.get("id")
        return str(rid) if isinstance(rid, int) else self.run_id

    def run_url(self) -> str | None:
        rid = self.results_run_id
        if not rid.isdigit():
            return None
        return f"{self.server_url}/{self.repository}/actions/runs/{rid}"

    def artifact_url(self, artifact_id: str | None) -> str | None:
        run = self.run_url()
        if run is None or not artifact_id or not artifact_id.isdigit():
            return None
        return f"{run}/artifacts/{artifact_id}"

    def marker(self) -> str:
        """The hidden line that identifies our sticky comment for this workflow and job."""
        wf = quote(self.workflow or "workflow", safe="")
        job = quote(self.job or "job", safe="")
        return f"<!-- pytest-halo:sticky workflow={wf} job={job} -->"

    def job_slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.job or "job").strip("-") or "job"
