"""A PyGithub client for the REST API the run gives us (``GITHUB_API_URL``, so GitHub Enterprise works).

Retries are PyGithub's ``GithubRetry`` (a urllib3 ``Retry``): 5xx answers and secondary rate
limits are retried, honouring ``Retry-After``; a 403 without a rate-limit message is not.
``explain`` turns what GitHub refused into the one line a user reads in the notice.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from github import Auth, Github, GithubException, GithubRetry
from urllib3.exceptions import HTTPError as Urllib3Error

FORK_HINT = (
    "the token is read-only here (a pull request from a fork gets one, or the workflow lacks "
    "pull-requests: write / checks: write); the job summary has the results. "
    "To comment on fork PRs use the workflow_run pattern in docs/github-action.md"
)


@dataclass(frozen=True)
class ClientSettings:
    """How hard to try: attempts, backoff and GitHub's recommended pacing between writes."""

    total_retries: int = 4
    backoff_factor: float = 1.0
    secondary_rate_wait: float = 60.0
    max_rate_limit_wait: float = 300.0
    timeout: int = 30
    seconds_between_requests: float = 0.25
    seconds_between_writes: float = 1.0


def make_github(api_url: str, token: str, settings: ClientSettings | None = None) -> Github:
    s = settings or ClientSettings()
    retry = GithubRetry(
        total=s.total_retries,
        backoff_factor=s.backoff_factor,
        secondary_rate_wait=s.secondary_rate_wait,
        max_rate_limit_wait=s.max_rate_limit_wait,
    )
    return Github(
        base_url=api_url,
        auth=Auth.Token(token) if token else None,
        timeout=s.timeout,
        retry=retry,
        lazy=True,  # no GET of the repository or the issue before we need their content
        per_page=100,
        seconds_between_requests=s.seconds_between_requests or None,
        seconds_between_writes=s.seconds_between_writes or None,
        user_agent="pytest-halo",
    )


PUBLISH_ERRORS: tuple[type[BaseException], ...] = (GithubException, requests.RequestException, Urllib3Error)


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    msg = str(data.get("message") or "").strip()
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        detail = first.get("message") or first.get("code") if isinstance(first, dict) else first
        if detail:
            msg = f"{msg} ({detail})" if msg else str(detail)
    return " ".join(msg.split())[:200]


def explain(exc: BaseException, what: str) -> str:
    """One line saying what could not be done and why, for the log and the job summary."""
    if isinstance(exc, GithubException):
        status, msg = exc.status, _message(exc)
        if status == 403 and "rate limit" not in msg.lower():
            return f"{what}: GitHub answered 403 {msg!r}: {FORK_HINT}"
        if status == 401:
            return f"{what}: GitHub answered 401 (bad or missing token: pass github-token)"
        if status == 404:
            return f"{what}: GitHub answered 404 (not found, or the token cannot see it)"
        if status == 422:
            return f"{what}: GitHub refused the content (422 {msg!r})"
        return f"{what}: GitHub answered {status} {msg!r}"
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{what}: could not reach GitHub ({type(exc).__name__}: {first})"


def is_read_only(exc: BaseException) -> bool:
    return isinstance(exc, GithubException) and exc.status == 403 and "rate limit" not in _message(exc).lower()
