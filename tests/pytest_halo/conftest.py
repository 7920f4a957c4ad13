"""Helpers for pytester-driven runs of ``pytest --halo`` in fresh subprocesses (fresh OTel globals)."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fake_chat_server
import orjson
import pytest

from engine.traces.normalize import category_of

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "support_agent"

_SCRUB_PREFIXES = ("PYTEST_XDIST_", "HALO", "OTEL_", "PYTEST_ADDOPTS")
_SCRUB = {"PYTEST_CURRENT_TEST", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy",
          "OPENAI_API_KEY", "OPENAI_BASE_URL"}


# A conftest for inner suites: a loopback OpenAI Chat Completions server answering ``price_script`` as ``base_url``.
FAKE_CHAT_SERVER = fake_chat_server.source() + "\nbase_url = chat_server_fixture(price_script)\n"
# The Agents SDK shop agent, for an inner project's ``shop_agent.py``.
SHOP_AGENT = (REPO / "tests" / "agents_sdk_shop.py").read_text()


@dataclass
class HaloRun:
    """One inner run: pytest's result plus what halo wrote."""

    result: Any
    dir: Path
    spans: list[dict[str, Any]] = field(default_factory=list)
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ret(self) -> int:
        return int(self.result.ret)

    def output(self) -> str:
        return self.result.stdout.str()

    def spans_of(self, nodeid_suffix: str) -> list[dict[str, Any]]:
        return [s for s in self.spans if str(s["attributes"].get("halo.test.nodeid", "")).endswith(nodeid_suffix)]

    def categories(self, spans: list[dict[str, Any]] | None = None) -> Counter[str]:
        return Counter(category_of(s["attributes"], s["name"]) for s in (self.spans if spans is None else spans))

    def counts_by_test(self) -> dict[str, int]:
        return dict(Counter(s["attributes"].get("halo.test.nodeid") for s in self.spans))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture
def run_halo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``run_halo(*args, workers=None)``: run pytest in a subprocess with a scrubbed env, load .halo output."""
    for key in list(os.environ):
        if key.startswith(_SCRUB_PREFIXES) or key in _SCRUB:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "0")

    def run(*args: str, workers: int | None = None, halo_dir: str = ".halo", timeout: float = 240) -> HaloRun:
        argv = ["-p", "no:cacheprovider", *args]
        if workers:
            argv += ["-n", str(workers)]
        result = pytester.runpytest_subprocess(*argv, timeout=timeout)
        d = pytester.path / halo_dir
        tests = {t["nodeid"]: t for t in read_jsonl(d / "tests.jsonl")}
        return HaloRun(result, d, read_jsonl(d / "traces.jsonl"), tests)

    return run


def check_loads_in_halo_engine(python: Path, traces: Path) -> dict[str, int]:
    """Validate every line with halo-engine 0.3.5's ``SpanRecord`` and build its index + store."""
    script = f"""
import asyncio, json, pathlib
from engine.traces.models.canonical_span import SpanRecord
from engine.traces.trace_index_builder import TraceIndexBuilder
from engine.traces.trace_store import TraceStore
p = pathlib.Path({str(traces)!r})
n = 0
for line in p.read_text().splitlines():
    if line.strip():
        SpanRecord.model_validate_json(line); n += 1
idx = p.with_name("traces.engine-index.jsonl"); meta = p.with_name("traces.engine-index.meta.json")
asyncio.run(TraceIndexBuilder.build_index(p, idx, meta, 2))
store = TraceStore.load(p, idx)
print(json.dumps({{"spans": n, "traces": len(store._rows)}}))
"""
    proc = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd="/", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return orjson.loads(proc.stdout.strip().splitlines()[-1])
