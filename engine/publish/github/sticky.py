"""One comment per workflow and job on a pull request, edited in place across runs.

Ours is the comment that carries our hidden marker *and* was written by the token's identity
(``github-actions[bot]`` or the app's ``<slug>[bot]``), found across every page of comments.
A comment with our marker from anyone else is ignored: never edited, minimized or deleted.
``GET /user`` is never called (an installation token gets 403 there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from github import GithubException

CommentMode = Literal["always", "changes", "failures", "off"]
COMMENT_MODES: tuple[str, ...] = ("always", "changes", "failures", "off")
Action = Literal["created", "updated", "deleted", "unchanged", "skipped"]


class _User(Protocol):
    login: str


class CommentLike(Protocol):
    """What we use of PyGithub's ``IssueComment``."""

    id: int
    body: str
    user: _User

    def edit(self, body: str) -> None: ...
    def delete(self) -> None: ...


class IssueLike(Protocol):
    def get_comments(self) -> Iterable[CommentLike]: ...
    def create_comment(self, body: str) -> CommentLike: ...


@dataclass(frozen=True)
class Wanted:
    """What the comment should be after this run: a full body, the all-clear body, or gone."""

    kind: Literal["post", "all_clear", "delete", "leave"]
    create: bool  # whether to create one when none exists


def decide(mode: str, *, failed: bool, all_clear: bool, changed: bool) -> Wanted:
    """The ``comment-mode`` policy.

    always   — always post; collapse to "all clear" when nothing systemic remains.
    changes  — post when the gate saw a change (new, regressed, resolved, emerging) or failed;
               otherwise only refresh an existing comment.
    failures — post only when the gate failed; delete ours once it no longer fails.
    off      — leave comments alone.
    """
    if mode == "off":
        return Wanted("leave", create=False)
    if mode == "failures":
        return Wanted("post", create=True) if failed else Wanted("delete", create=False)
    kind: Literal["post", "all_clear"] = "all_clear" if all_clear else "post"
    if mode == "changes":
        return Wanted(kind, create=failed or changed)
    return Wanted(kind, create=True)


def is_ours(comment: CommentLike, marker: str, author: str) -> bool:
    body = comment.body or ""
    user = comment.user.login if comment.user is not None else None
    return marker in body and user == author


def find_ours(comments: Iterable[CommentLike], marker: str, author: str) -> list[CommentLike]:
    """Every comment of ours, oldest first (PyGithub pages through all of them)."""
    return [c for c in comments if is_ours(c, marker, author)]


def upsert(
    issue: IssueLike,
    *,
    marker: str,
    author: str,
    wanted: Wanted,
    body: str,
    fallback: str | None = None,
) -> Action:
    """Bring the PR to one comment of ours with ``body`` (or none), reusing the oldest one we wrote.

    ``fallback`` is a short body tried once when GitHub refuses ``body`` as invalid (422).
    """
    if wanted.kind == "leave":
        return "skipped"
    ours = find_ours(issue.get_comments(), marker, author)
    keep, extra = (ours[0], ours[1:]) if ours else (None, [])
    for dup in extra:  # left by a concurrent run: ours to remove
        dup.delete()
    if wanted.kind == "delete":
        if keep is None:
            return "skipped"
        keep.delete()
        return "deleted"
    if keep is None and not wanted.create:
        return "skipped"
    return _write(issue, keep, body, fallback)


def _write(issue: IssueLike, keep: CommentLike | None, body: str, fallback: str | None) -> Action:
    try:
        return _write_once(issue, keep, body)
    except GithubException as exc:
        if exc.status != 422 or fallback is None:
            raise
        return _write_once(issue, keep, fallback)


def _write_once(issue: IssueLike, keep: CommentLike | None, body: str) -> Action:
    if keep is None:
        issue.create_comment(body)
        return "created"
    if (keep.body or "") == body:
        return "unchanged"
    keep.edit(body)
    return "updated"
