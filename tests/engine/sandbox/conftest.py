"""A real Deno + Pyodide sandbox for the tests (provisioned by `halo sandbox setup`, which .ci/run runs)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sandbox_driver import SyncSandbox

from engine.sandbox import SandboxLimits, SandboxUnavailable


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
