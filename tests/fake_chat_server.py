"""A loopback OpenAI Chat Completions server that the real ``openai`` client (or a framework on it) talks to.

A *script* reads the request's messages and says what the model does next: a string is its final answer,
a list of ``(tool, arguments)`` pairs is one turn of tool calls. ``chat_server_fixture`` serves a script as
the ``base_url`` fixture. In-process tests import this module; inner pytester projects get its text (see
``source``) written into their conftest, so their runs need nothing from this tree. That is also why it
has no ``from __future__`` import (the text may follow other statements) and uses only stdlib and pytest.
"""

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

Messages = list[dict[str, Any]]
Step = str | list[tuple[str, dict[str, Any]]]
Script = Callable[[Messages], Step]
Usage = Callable[[Messages], tuple[int, int]]  # (prompt, completion) tokens


def price_script(messages: Messages) -> Step:
    """``price of X`` -> ``get_price(X)``; ``forecast for X`` -> ``get_forecast(X)``, a tool no agent has;
    a tool result -> "The price is <result>"."""
    last = messages[-1]
    if last["role"] == "tool":
        return "The price is " + last["content"]
    words = last["content"].split()
    return [("get_forecast" if words[0] == "forecast" else "get_price", {"item": words[-1]})]


def fixed_usage(messages: Messages) -> tuple[int, int]:
    return 20, 7


def completion(step: Step, messages: Messages, model: str, usage: Usage = fixed_usage) -> dict[str, Any]:
    """The Chat Completions body for ``step``; ids count the request's messages, so they differ per turn."""
    n = len(messages)
    if isinstance(step, str):
        message: dict[str, Any] = {"role": "assistant", "content": step}
        finish = "stop"
    else:
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{n}_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for i, (name, args) in enumerate(step)]}
        finish = "tool_calls"
    prompt, answer = usage(messages)
    return {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer}}


class FakeChatServer:
    """Serves ``POST .../chat/completions`` from ``script`` on 127.0.0.1 (a free port); ``url`` is the base URL."""

    def __init__(self, script: Script, usage: Usage = fixed_usage) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reply = completion(script(body["messages"]), body["messages"], body["model"], usage)
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> "FakeChatServer":
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def chat_server_fixture(script: Script, usage: Usage = fixed_usage, scope: Any = "session") -> Any:
    """A ``base_url`` fixture serving ``script``: assign it to a module-level ``base_url`` in a conftest or test."""

    @pytest.fixture(scope=scope, name="base_url")
    def base_url() -> Iterator[str]:
        with FakeChatServer(script, usage) as server:
            yield server.url

    return base_url


def source() -> str:
    """This module's text, for an inner project's conftest."""
    return Path(__file__).read_text()
