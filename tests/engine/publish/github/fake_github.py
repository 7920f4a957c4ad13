"""A loopback fake of the GitHub REST API parts we use, stateful enough for real PyGithub.

Served by ``pytest-httpserver`` under a GitHub Enterprise style prefix (``/api/v3``) so the
base URL handling is exercised. Faults (5xx, secondary rate limits, 404, 422) are injected per
route; ``read_only`` answers every write the way GitHub answers a fork's token.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

PREFIX = "/api/v3"
BOT = "github-actions[bot]"
NOT_ACCESSIBLE = "Resource not accessible by integration"


@dataclass
class Fault:
    method: str
    path: str  # regex, searched in the path after the prefix
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


class FakeGitHub:
    def __init__(self, server: HTTPServer, repo: str = "octo/agent") -> None:
        self.server = server
        self.repo = repo
        self.base_url = server.url_for(PREFIX).rstrip("/")
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.runs: list[dict[str, Any]] = []
        self.artifacts: dict[int, list[dict[str, Any]]] = {}
        self.blobs: dict[int, bytes] = {}
        self.pulls: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.read_only = False
        self.max_body = 65_536
        self.log: list[tuple[str, str]] = []
        self.blob_auth: list[str | None] = []
        self._next_id = 1000
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    # --- state helpers ---------------------------------------------------------------------
    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _comment(self, issue: int, body: str, login: str) -> dict[str, Any]:
        cid = self._id()
        return {
            "id": cid, "node_id": f"IC_{cid}", "body": body,
            "url": f"{self.base_url}/repos/{self.repo}/issues/comments/{cid}",
            "html_url": f"https://github.example/{self.repo}/pull/{issue}#issuecomment-{cid}",
            "issue_url": f"{self.base_url}/repos/{self.repo}/issues/{issue}",
            "user": {"login": login, "id": 41898282 if login == BOT else 7, "type": "Bot" if "[bot]" in login else "User"},
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        }

    def add_comment(self, issue: int, body: str, login: str) -> dict[str, Any]:
        c = self._comment(issue, body, login)
        self.comments.setdefault(issue, []).append(c)
        return c

    def add_run(self, *, branch: str, event: str = "push", conclusion: str = "success",
                artifacts: dict[str, dict[str, bytes]] | None = None, expired: bool = False) -> dict[str, Any]:
        rid = self._id()
        run = {
            "id": rid, "name": "ci", "head_branch": branch, "head_sha": f"{rid:040x}", "event": event,
            "status": "completed", "conclusion": conclusion, "run_number": rid,
            "url": f"{self.base_url}/repos/{self.repo}/actions/runs/{rid}",
            "artifacts_url": f"{self.base_url}/repos/{self.repo}/actions/runs/{rid}/artifacts",
        }
        self.runs.insert(0, run)  # newest first, like GitHub
        self.artifacts[rid] = []
        for name, files in (artifacts or {}).items():
            aid = self._id()
            self.blobs[aid] = zip_of(files)
            self.artifacts[rid].append({
                "id": aid, "node_id": f"A_{aid}", "name": name, "size_in_bytes": len(self.blobs[aid]),
                "expired": expired,
                "url": f"{self.base_url}/repos/{self.repo}/actions/artifacts/{aid}",
                "archive_download_url": f"{self.base_url}/repos/{self.repo}/actions/artifacts/{aid}/zip",
                "workflow_run": {"id": rid, "head_branch": branch, "head_sha": run["head_sha"]},
            })
        return run

    def add_pull(self, number: int, head_sha: str, label: str) -> None:
        self.pulls.append({
            "number": number, "state": "open", "url": f"{self.base_url}/repos/{self.repo}/pulls/{number}",
            "head": {"sha": head_sha, "label": label, "ref": label.split(":", 1)[1]},
        })

    def fault(self, method: str, path: str, status: int, message: str, *, times: int = 1,
              headers: dict[str, str] | None = None) -> None:
        self.faults.append(Fault(method, path, status, {"message": message}, dict(headers or {}), times))

    def calls(self, method: str, pattern: str) -> int:
        return sum(1 for m, p in self.log if m == method and re.search(pattern, p))

    # --- HTTP ---------------------------------------------------------------------------------
    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(data), status=status, headers=headers or {}, content_type="application/json")

    def handle(self, req: Request) -> Response:
        path = req.path
        if path.startswith("/blob/"):
            self.blob_auth.append(req.headers.get("Authorization"))
            return Response(self.blobs[int(path.rsplit("/", 1)[1])], content_type="application/zip")
        if not path.startswith(PREFIX):
            return self._json({"message": "Not Found"}, 404)
        path = path[len(PREFIX):]
        self.log.append((req.method, path))
        for f in self.faults:
            if f.times > 0 and f.method == req.method and re.search(f.path, path):
                f.times -= 1
                return self._json(f.body, f.status, f.headers)
        if path == "/user":
            return self._json({"message": NOT_ACCESSIBLE}, 403)
        if req.method != "GET" and self.read_only:
            return self._json({"message": NOT_ACCESSIBLE, "documentation_url": "https://docs.github.com"}, 403)
        r = f"/repos/{self.repo}"
        if m := re.fullmatch(rf"{r}/issues/(\d+)/comments", path):
            return self._issue_comments(req, int(m[1]))
        if m := re.fullmatch(rf"{r}/issues/comments/(\d+)", path):
            return self._one_comment(req, int(m[1]))
        if path == f"{r}/check-runs" and req.method == "POST":
            return self._check_run(req, None)
        if m := re.fullmatch(rf"{r}/check-runs/(\d+)", path):
            return self._check_run(req, int(m[1]))
        if path == f"{r}/actions/runs":
            q = req.args
            runs = [x for x in self.runs
                    if all(not q.get(k) or str(x[f]) == q[k]
                           for k, f in (("branch", "head_branch"), ("event", "event"), ("status", "conclusion")))]
            return self._json({"total_count": len(runs), "workflow_runs": runs})
        if m := re.fullmatch(rf"{r}/actions/runs/(\d+)/artifacts", path):
            arts = self.artifacts.get(int(m[1]), [])
            return self._json({"total_count": len(arts), "artifacts": arts})
        if m := re.fullmatch(rf"{r}/actions/artifacts/(\d+)/zip", path):
            if int(m[1]) not in self.blobs:
                return self._json({"message": "Not Found"}, 404)
            # GitHub redirects to storage on another host; PyGithub must not send our token there
            root = self.server.url_for("/").rstrip("/")
            host = root.replace("localhost", "127.0.0.1") if "localhost" in root else root.replace("127.0.0.1", "localhost")
            return Response("", status=302, headers={"Location": f"{host}/blob/{m[1]}"})
        if path == f"{r}/pulls":
            head = req.args.get("head")
            return self._json([p for p in self.pulls if not head or p["head"]["label"] == head])
        return self._json({"message": "Not Found"}, 404)

    def _issue_comments(self, req: Request, issue: int) -> Response:
        if req.method == "POST":
            body = (req.get_json() or {}).get("body", "")
            if len(body) > self.max_body:
                return self._json({"message": "Validation Failed",
                                   "errors": [{"resource": "IssueComment", "code": "custom", "field": "body",
                                               "message": "body is too long (maximum is 65536 characters)"}]}, 422)
            c = self.add_comment(issue, body, BOT)
            return self._json(c, 201)
        items = self.comments.get(issue, [])
        per = int(req.args.get("per_page", 30))
        page = int(req.args.get("page", 1))
        last = max(1, -(-len(items) // per))
        headers = {}
        url = f"{self.base_url}/repos/{self.repo}/issues/{issue}/comments"
        links = []
        if page < last:
            links.append(f'<{url}?{urlencode({"per_page": per, "page": page + 1})}>; rel="next"')
            links.append(f'<{url}?{urlencode({"per_page": per, "page": last})}>; rel="last"')
        if links:
            headers["Link"] = ", ".join(links)
        return self._json(items[(page - 1) * per : page * per], headers=headers)

    def _one_comment(self, req: Request, cid: int) -> Response:
        for items in self.comments.values():
            for i, c in enumerate(items):
                if c["id"] != cid:
                    continue
                if req.method == "DELETE":
                    del items[i]
                    return Response("", status=204)
                if req.method == "PATCH":
                    body = (req.get_json() or {}).get("body", "")
                    if len(body) > self.max_body:
                        return self._json({"message": "Validation Failed",
                                           "errors": [{"message": "body is too long"}]}, 422)
                    c["body"] = body
                    c["updated_at"] = "2026-01-02T00:00:00Z"
                return self._json(c)
        return self._json({"message": "Not Found"}, 404)

    def _check_run(self, req: Request, rid: int | None) -> Response:
        data = req.get_json() or {}
        notes = (data.get("output") or {}).get("annotations") or []
        if len(notes) > 50:
            return self._json({"message": "Validation Failed", "errors": ["annotations: at most 50"]}, 422)
        if rid is None:
            rid = self._id()
            self.check_runs[rid] = {"id": rid, "url": f"{self.base_url}/repos/{self.repo}/check-runs/{rid}",
                                    "annotations": [], "requests": 0}
        run = self.check_runs.get(rid)
        if run is None:
            return self._json({"message": "Not Found"}, 404)
        run["requests"] += 1
        run["annotations"] += notes
        for k, v in data.items():
            if k != "output":
                run[k] = v
        run["output"] = {k: v for k, v in (data.get("output") or {}).items() if k != "annotations"}
        return self._json({k: v for k, v in run.items() if k not in ("annotations", "requests")},
                          201 if req.method == "POST" else 200)
