"""One Agents SDK run, two ways in: captured live by ``pytest --halo`` and exported with ``span.export()``.

Both must give the same canonical spans (ids included; times and the test linkage capture adds
aside) and the same failure-mode ids — they used to map span names, guardrail keys and total
tokens differently, so an agent's modes depended on how its traces arrived. The real Runner and
the real ``OpenAIChatCompletionsModel`` over the ``openai`` client talk to a loopback fake server.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from conftest import FAKE_CHAT_SERVER, SHOP_AGENT

from engine.analysis.config import AnalysisConfig
from engine.analysis.pipeline import analyze_paths, read_tests_file
from engine.traces import conventions
from engine.traces.ingest import detect_format, iter_spans
from engine.traces.problems import Problems

pytest.importorskip("agents")

# The exporter's view, and the shared fake server: price of X -> get_price(X), forecast for X -> get_forecast(X).
CONFTEST = '''
import json, os

from agents import TracingProcessor, add_trace_processor, set_trace_processors


class ExportWriter(TracingProcessor):
    """What an exporter receives: span.export() / trace.export(), one JSON line each."""
    def __init__(self):
        self.path = f"export-{os.getpid()}.jsonl"
    def _write(self, item):
        with open(self.path, "a") as fh:
            fh.write(json.dumps(item) + "\\n")
    def on_trace_start(self, trace): pass
    def on_trace_end(self, trace): self._write(trace.export())
    def on_span_start(self, span): pass
    def on_span_end(self, span): self._write(span.export())
    def shutdown(self): pass
    def force_flush(self): pass


set_trace_processors([])  # offline: no uploader
add_trace_processor(ExportWriter())
''' + FAKE_CHAT_SERVER

TESTS = '''
import pytest
from agents import InputGuardrailTripwireTriggered, Runner
from shop_agent import shop


@pytest.mark.parametrize("item", ["apple", "pear", "kiwi", "mango"])
def test_price(base_url, item):
    assert "error" not in Runner.run_sync(shop(base_url), f"price of {item}").final_output


@pytest.mark.parametrize("city", ["Oslo", "Rome"])
def test_forecast(base_url, city):
    Runner.run_sync(shop(base_url), f"forecast for {city}")


@pytest.mark.parametrize("n", [1, 2])
def test_guardrail(base_url, n):
    with pytest.raises(InputGuardrailTripwireTriggered):
        Runner.run_sync(shop(base_url), f"forbidden question {n} about apple")
'''

CAPTURE_ONLY = (conventions.TEST_NODEID, conventions.TEST_OUTCOME, conventions.TEST_PHASE, conventions.TEST_WORKER, conventions.RUN_ID)


def comparable(span: dict[str, Any]) -> dict[str, Any]:
    """A span without its times and the test linkage only live capture can know."""
    out = {k: v for k, v in span.items() if k not in ("start_time", "end_time")}
    out["attributes"] = {k: v for k, v in span["attributes"].items() if k not in CAPTURE_ONLY}
    return out


def by_original_id(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["attributes"][conventions.ORIGINAL_SPAN_ID]: comparable(s) for s in spans}


def test_live_capture_and_export_file_give_the_same_spans_and_modes(pytester: pytest.Pytester, run_halo: Any) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(shop_agent=SHOP_AGENT, test_shop=TESTS)
    run = run_halo("--halo", "--halo-skip-analysis")
    run.result.assert_outcomes(passed=4, failed=4)  # kiwi, mango (tool error); Oslo, Rome (missing tool)
    exports = sorted(pytester.path.glob("export-*.jsonl"))
    assert exports and all(detect_format(p) == "agents_sdk" for p in exports)
    problems = Problems()
    converted = list(iter_spans(exports, problems))
    assert problems.skipped_total == 0 and not problems.repaired
    live, exported = by_original_id(run.spans), by_original_id(converted)
    assert len(live) == len(run.spans) and len(exported) == len(converted)
    assert sum(s["attributes"]["openai_agents.span_type"] == "trace" for s in run.spans) == 8  # one root per run
    assert live.keys() == exported.keys()
    mismatched = [k for k in live if live[k] != exported[k]]
    assert not mismatched, (live[mismatched[0]], exported[mismatched[0]])
    types = {s["attributes"]["openai_agents.span_type"] for s in converted}
    assert {"trace", "task", "turn", "agent", "generation", "function", "guardrail"} <= types

    out = pytester.path / "export-canonical.jsonl"
    out.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in converted))
    tests = read_tests_file(run.dir / "tests.jsonl", Problems())
    modes = {}
    for name, path in (("live", run.dir / "traces.jsonl"), ("export", out)):
        f = analyze_paths([path], config=AnalysisConfig(), tests=tests, problems=Problems())
        modes[name] = {(m.id, m.detector, m.title) for m in f.failure_modes}
    assert modes["live"] == modes["export"]
    titles = {t for _, _, t in modes["live"]}
    assert "Model calls a tool that does not exist: `get_forecast`" in titles
    assert "Guardrail `no_forbidden` trips" in titles
    assert any(t.startswith("Tool `get_price` fails") for t in titles), titles
