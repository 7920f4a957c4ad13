"""Fixtures of the LLM engine tests: the scripted server, engine settings pointing at it, the tau-bench store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer

from engine.llm.settings import EngineSettings

TAU = "tau-bench-airline/gpt-4o-airline.json"


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    """``scripted(script)`` starts a loopback server (stopped at teardown)."""
    servers: list[ScriptedServer] = []

    def start(script: Any) -> ScriptedServer:
        srv = ScriptedServer(script).__enter__()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.__exit__(None, None, None)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., EngineSettings]:
    """Settings for a server: private cache dir, fast retries, no API key needed."""

    def make(server: ScriptedServer | None = None, **kw: Any) -> EngineSettings:
        base = {"model": "gpt-4o-mini", "base_url": server.url if server else "http://127.0.0.1:9/v1",
                "api_key": "test-key", "cache_dir": tmp_path / "llm-cache", "retry_base_s": 0.01,
                "retry_max_s": 0.05, "max_retries": 3, "request_timeout_s": 10, "run_code": False}
        base.update(kw)
        return EngineSettings(**base)

    return make


@pytest.fixture(scope="session")
def tau_path(corpora: Path) -> Path:
    return corpora / TAU


@pytest.fixture(scope="session")
def tau_store(tau_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine.traces.store import TraceStore

    return TraceStore.open([tau_path], cache_dir=tmp_path_factory.mktemp("index-cache"))
