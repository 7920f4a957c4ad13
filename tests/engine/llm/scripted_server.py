"""A loopback OpenAI-compatible Chat Completions server driven by a Python script.

The real ``openai`` client talks HTTP to it; nothing of the client is mocked. A script is a
function of the parsed request body (and its sequence number) that returns a response: a
Chat Completions body (``text(...)``, ``calls(...)``), or ``Raw`` bytes with a status and
headers (errors, garbage). Every request body is kept, with its size, for assertions.

Reusable by other suites (e.g. the sandbox's ``llm_query``)::

    with ScriptedServer(lambda req, n: text("hi")) as srv:
        client = OpenAI(base_url=srv.url, api_key="x")
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Raw:
    """A response sent as is: status, headers and body bytes."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Script = Callable[[dict[str, Any], int], Any]


def _usage(tokens_in: int, tokens_out: int) -> dict[str, int]:
    return {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}


def text(content: str, *, tokens_in: int = 100, tokens_out: int = 20, model: str = "scripted") -> dict[str, Any]:
    """A plain assistant answer."""
    return {
        "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": _usage(tokens_in, tokens_out),
    }


def calls(*items: tuple[str, Any], tokens_in: int = 100, tokens_out: int = 20, content: str | None = None,
          model: str = "scripted") -> dict[str, Any]:
    """An assistant answer with tool calls; each item is (name, arguments dict or raw string)."""
    tool_calls = []
    for i, (name, args) in enumerate(items):
        raw = args if isinstance(args, str) else json.dumps(args)
        tool_calls.append({"id": f"call_{i}_{abs(hash((name, raw))) % 10**8}", "type": "function",
                           "function": {"name": name, "arguments": raw}})
    return {
        "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": content, "tool_calls": tool_calls}}],
        "usage": _usage(tokens_in, tokens_out),
    }


def http_error(status: int, message: str = "scripted error", headers: dict[str, str] | None = None) -> Raw:
    body = json.dumps({"error": {"message": message, "type": "scripted", "code": status}}).encode()
    return Raw(status, body, {"Content-Type": "application/json", **(headers or {})})


# ---------------------------------------------------------------- reading a request


def system_text(req: dict[str, Any]) -> str:
    msgs = req.get("messages") or []
    return str(msgs[0].get("content") or "") if msgs and msgs[0].get("role") == "system" else ""


def role_of(req: dict[str, Any]) -> str:
    """root | sub | synthesis | compaction | other, from the system prompt."""
    s = system_text(req)
    if s.startswith("You are the root agent"):
        return "root"
    if s.startswith("You are a HALO subagent"):
        return "sub"
    if s.startswith("Summarize this tool result"):
        return "compaction"
    if s.startswith("You summarize agent traces"):
        return "synthesis"
    return "other"


def depth_of(req: dict[str, Any]) -> int:
    s = system_text(req)
    if "depth=" in s:
        return int(s.split("depth=", 1)[1].split()[0])
    return 0


def turn_of(req: dict[str, Any]) -> int:
    """How many answers this agent already got (assistant messages in its conversation)."""
    return sum(1 for m in req.get("messages") or [] if m.get("role") == "assistant")


def first_user(req: dict[str, Any]) -> str:
    return next((str(m.get("content") or "") for m in req.get("messages") or [] if m.get("role") == "user"), "")


def last_message(req: dict[str, Any]) -> dict[str, Any]:
    return (req.get("messages") or [{}])[-1]


def tool_results(req: dict[str, Any], name: str | None = None) -> list[str]:
    """Contents of the tool results in the conversation (of tool ``name`` when given), oldest first."""
    names: dict[str, str] = {}
    out = []
    for m in req.get("messages") or []:
        for tc in m.get("tool_calls") or []:
            names[tc["id"]] = tc["function"]["name"]
        if m.get("role") == "tool" and (name is None or names.get(m.get("tool_call_id")) == name):
            out.append(str(m.get("content") or ""))
    return out


def tool_names(req: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in req.get("tools") or []]


# ---------------------------------------------------------------- the server


class ScriptedServer:
    """Serves ``POST /v1/chat/completions`` from ``script`` on 127.0.0.1 (a free port)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.sizes: list[int] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                try:
                    body = json.loads(data)
                except ValueError:
                    body = {}
                with server.lock:
                    n = len(server.requests)
                    server.requests.append(body)
                    server.sizes.append(len(data))
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                try:
                    out = server.script(body, n)
                except Exception as exc:  # a broken script shows up as a 599 the test will see
                    out = http_error(599, f"script raised {type(exc).__name__}: {exc}")
                if not isinstance(out, Raw):
                    out = Raw(200, json.dumps(out).encode(), {"Content-Type": "application/json"})
                try:
                    self.send_response(out.status)
                    for k, v in out.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(out.body)))
                    self.end_headers()
                    self.wfile.write(out.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test): no traceback on the run's stderr

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def by_role(self, role: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if role_of(r) == role]
