"""A real Deno + Pyodide sandbox for the tests (provisioned by `halo sandbox setup`, which .ci/run runs)."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from engine.sandbox import Sandbox, SandboxLimits, SandboxUnavailable


class SyncSandbox:
    """Drives one ``Sandbox`` on its own event loop, so tests read like plain calls."""

    def __init__(self, limits: SandboxLimits) -> None:
        self.loop = asyncio.new_event_loop()
        self.sandbox = Sandbox(limits)

    def run(self, code: str, **kwargs: Any) -> Any:
        return self.loop.run_until_complete(self.sandbox.run(code, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.sandbox.close())
        self.loop.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SyncSandbox]:
    try:
        box = SyncSandbox(SandboxLimits(timeout_s=20, memory_mb=512))
    except SandboxUnavailable as exc:
        pytest.skip(f"{exc} (CI runs `halo sandbox setup`)")
    yield box
    box.close()


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/javascript")
        self.end_headers()
        self.wfile.write(b"export const pwned = 1;")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server recording every request: a denial means it saw nothing."""
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", _Recorder.hits
    server.shutdown()
    server.server_close()
