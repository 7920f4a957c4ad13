"""The Python API (sync, async, events), the progress line, tool providers, plugin settings and llm-report.md."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from pydantic import BaseModel
from scripted_server import calls, role_of, tool_names, tool_results, turn_of

from engine.findings import Findings, LLMTotals, RejectedMode
from engine.llm import make_reasoner
from engine.llm.api import analyze, analyze_async, stream
from engine.llm.engine import run_engine
from engine.llm.events import EngineEvent
from engine.llm.progress import ProgressReporter
from engine.llm.settings import from_plugin
from engine.llm.tools.base import ToolUnavailable, check_provider
from engine.publish.llm_report import LLMReport, render_llm_report


def _script(req, n):
    if turn_of(req) == 0:
        return calls(("count_traces", {"filters": {"has_errors": True}}))
    total = json.loads(tool_results(req, "count_traces")[0])["total"]
    return calls(("final_answer", {"answer": f"{total} traces have errors", "failure_modes": []}))


def test_sync_async_and_stream(scripted, make_settings, tau_path, tau_store):
    srv = scripted(_script)
    settings = make_settings(srv)
    r1 = analyze([tau_path], settings=settings)
    assert r1.answer == "36 traces have errors" and r1.totals.stopped_because == "finished"
    r2 = asyncio.run(analyze_async(tau_store, settings=settings))
    assert r2.answer == r1.answer and r2.totals.cached == 2

    async def collect():
        return [e async for e in stream(tau_store, settings=settings)]

    events = asyncio.run(collect())
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end" and "tool_call" in kinds and "agent_start" in kinds
    assert events[-1].data["result"].answer == r1.answer


def test_progress_plain_lines_and_tty_redraw(scripted, make_settings, tau_store, tmp_path, monkeypatch):
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "no-sandbox-here"))  # Pyodide not set up
    srv = scripted(_script)
    plain, tty = io.StringIO(), io.StringIO()
    reporters = [ProgressReporter(plain, tty=False), ProgressReporter(tty, tty=True, interval_s=0)]
    asyncio.run(run_engine(make_settings(srv, run_code=True), tau_store,
                           on_event=lambda e: [r(e) for r in reporters]))
    lines = plain.getvalue().splitlines()
    assert "run_code unavailable: Pyodide" in lines[0] and "halo sandbox setup" in lines[0]
    assert sum("run_code unavailable" in line for line in lines) == 1  # one notice, once
    assert "run_code" not in tool_names(srv.requests[0])
    assert any("root@0 started" in line for line in lines) and "stopped: finished" in lines[-1]
    assert "requests 2 · tools 1 · tokens 240 · $0.0001" in lines[-1]
    assert "\r\x1b[2K" in tty.getvalue() and tty.getvalue().endswith("\n")


class EchoArgs(BaseModel):
    text: str


class EchoTool:
    name = "run_code"
    description = "echo (stands in for the sandbox)"
    arguments = EchoArgs
    scope = "all"

    async def run(self, ctx, args):
        return {"stdout": args.text.upper(), "depth": ctx.agent.depth}


class EchoProvider:
    name = "echo"

    def __init__(self):
        self.closed = False

    def tools(self, env):
        assert env.store is not None and env.complete_text is not None
        return [EchoTool()]

    async def close(self):
        self.closed = True


class MissingProvider:
    name = "git tools"

    def tools(self, env):
        raise ToolUnavailable("not a git repository")

    async def close(self):
        pass


def test_tool_providers_plug_in(scripted, make_settings, tau_store):
    def script(req, n):
        assert role_of(req) == "root"
        if turn_of(req) == 0:
            assert "run_code" in tool_names(req)
            return calls(("run_code", {"text": "hi"}))
        return calls(("final_answer", {"answer": tool_results(req, "run_code")[0]}))

    srv = scripted(script)
    echo = EchoProvider()
    events: list[EngineEvent] = []
    result = asyncio.run(run_engine(make_settings(srv), tau_store, providers=[check_provider(echo), MissingProvider()],
                                    on_event=events.append))
    assert json.loads(result.answer) == {"stdout": "HI", "depth": 0} and echo.closed
    notices = [e.data["message"] for e in events if e.kind == "notice"]
    assert notices == ["git tools unavailable: not a git repository"]  # no run_code notice: a provider gave it
    with pytest.raises(TypeError):
        check_provider(object())


def test_make_reasoner_takes_the_plugin_settings(tmp_path, monkeypatch):
    from pytest_halo.options import LLMSettings

    s = from_plugin(LLMSettings(model="m", base_url="http://x/v1", timeout_s=30, max_cost_usd=0.5, prompt="p",
                                max_depth=1, max_turns=7, max_tokens=1000, replay=tmp_path / "r.jsonl"))
    assert (s.model, s.base_url, s.timeout_s, s.max_cost_usd, s.prompt, s.max_depth, s.max_turns, s.max_tokens) == (
        "m", "http://x/v1", 30, 0.5, "p", 1, 7, 1000)
    assert s.sub_model == s.synth_model == s.compact_model == "m" and s.replay == tmp_path / "r.jsonl"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert make_reasoner(LLMSettings(model="m", base_url="http://127.0.0.1:9/v1")).name == "llm"  # local: no key
    with pytest.raises(ValueError, match="no API key for OpenAI: set OPENAI_API_KEY"):
        make_reasoner(LLMSettings(model="m"))
    monkeypatch.setenv("MY_KEY", "k")
    assert make_reasoner(LLMSettings(model="m", api_key_env="MY_KEY")).name == "llm"
    with pytest.raises(ValueError, match="no model"):
        make_reasoner(LLMSettings())


def test_llm_report_is_escaped_and_redacted(tmp_path):
    f = Findings(llm=LLMTotals(model="gpt-4o-mini", requests=3, cached=1, tokens_in=1200, tokens_out=300,
                               cost_usd=0.0012, wall_s=4.2, stopped_because="max_cost"),
                 llm_answer="# Answer\n<script>alert(1)</script> key sk-proj-abcdefghijklmnopqrstuv [x](http://evil)",
                 rejected=[RejectedMode(title="<b>bad</b>", reason="unknown trace id ff", round=1)])
    written = LLMReport().publish(f, tmp_path)
    text = written["llm-report.md"].read_text()
    assert "<script>" not in text.replace("\\<script>", "") and "\\<script>" in text  # escaped, inert
    assert "sk-proj-abcdef" not in text and "](http://evil)" not in text
    assert "3 requests (1 cached)" in text and "$0.0012" in text and "· stopped: max cost" in text
    assert "\n### Answer\n" in text  # the answer's own heading nests under "## Answer"
    assert "round 1:" in text and "<b>" not in text.replace("\\<b>", "")
    assert LLMReport().publish(Findings(), tmp_path / "none") == {}


def test_llm_report_answer_headings_stay_under_answer_after_a_mixed_fence(tmp_path):
    f = Findings(llm_answer="```\n~~~\n# in code\n```\n# After the code\n## Detail")
    text = render_llm_report(f)
    assert "\n# in code\n" in text  # inside the fence: untouched
    assert "\n### After the code\n" in text and "\n# After" not in text and "\n## Detail" not in text


def test_api_overrides_are_validated_like_settings(tau_store):
    from pydantic import ValidationError

    from engine.llm.settings import EngineSettings

    with pytest.raises(ValidationError, match="max_turns"):
        analyze(tau_store, settings=EngineSettings(model="m"), max_turns=0)
    with pytest.raises(ValidationError, match="no_such_setting"):
        analyze(tau_store, settings=EngineSettings(model="m"), no_such_setting=1)
