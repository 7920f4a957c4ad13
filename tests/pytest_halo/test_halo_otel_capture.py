"""OTel capture semantics: provider installed by halo / set later by the app / set before halo,
background-thread spans, exception folding, caps, and the manual API."""

from __future__ import annotations

import pytest

LATER = '''
import threading
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

tracer = trace.get_tracer("app")  # a ProxyTracer: no provider is set yet
resume = threading.Event()  # test_3 lets test_2's background trace finish while it runs
background = []


def test_1_before_app_provider():
    with tracer.start_as_current_span("early"):
        pass


def test_2_background():
    def work():
        with tracer.start_as_current_span("bg-root"):
            resume.wait(60)
            with tracer.start_as_current_span("bg-child"):
                pass
    background.append(threading.Thread(target=work))
    background[0].start()


def test_3_app_sets_provider():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider  # the app's provider wins over halo's
    with trace.get_tracer("app2").start_as_current_span("after-app-provider") as span:
        span.set_attribute("big", "x" * 70000)
    assert [s.name for s in exporter.get_finished_spans()] == ["after-app-provider"]
    resume.set()  # test_2's background trace finishes while this test runs
    background[0].join(60)
    assert not background[0].is_alive()


def test_4_exception():
    with tracer.start_as_current_span("boom") as span:
        try:
            raise ValueError("bad input")
        except ValueError as exc:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, "bad input"))
'''

BEFORE_CONFTEST = '''
import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider(resource=Resource.create({"service.name": "shop"}))
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(PROVIDER)


@pytest.fixture
def warmed():
    with trace.get_tracer("fixture").start_as_current_span("fixture-setup"):
        pass
    yield
    with trace.get_tracer("fixture").start_as_current_span("fixture-teardown"):
        pass
'''

BEFORE_TESTS = '''
from conftest import EXPORTER, PROVIDER
from opentelemetry import trace
from pytest_halo import trace_agent, trace_llm, trace_tool


def test_app_provider_keeps_working(warmed):
    assert trace.get_tracer_provider() is PROVIDER
    with trace.get_tracer("app").start_as_current_span("in-test"):
        pass
    assert "in-test" in [s.name for s in EXPORTER.get_finished_spans()]


@trace_tool
def search(query):
    if query == "bad":
        raise RuntimeError("search backend down")
    return ["result for " + query]


def test_manual_api():
    with trace_agent("researcher"):
        with trace_llm("plan", model="tiny-1") as llm:
            llm.offer_tool("search", {"type": "object"})
            llm.record_tool_call("browse", {"url": "x"})
            llm.set_usage(11, 3)
            llm.set_output("y" * 500)
        search("cats")
        try:
            search("bad")
        except RuntimeError:
            pass
'''


def test_provider_installed_then_replaced_by_app_and_background_spans(pytester, run_halo):
    pytester.makepyfile(test_later=LATER)
    run = run_halo("--halo", "--halo-skip-analysis")
    assert run.ret == 0, run.output()
    assert "Overriding of current TracerProvider is not allowed" not in run.output() + run.result.stderr.str()
    names = {k.split("::")[1]: sorted(s["name"] for s in run.spans_of(k)) for k in run.tests}
    assert names == {"test_1_before_app_provider": ["early"], "test_2_background": ["bg-child", "bg-root"],
                     "test_3_app_sets_provider": ["after-app-provider"], "test_4_exception": ["boom"]}
    big = run.spans_of("test_3_app_sets_provider")[0]["attributes"]
    assert len(big["big"]) == 64 * 1024 and big["halo.truncated_attributes"] == ["big"]
    boom = run.spans_of("test_4_exception")[0]
    assert boom["status"] == {"code": "STATUS_CODE_ERROR", "message": "bad input"}
    assert boom["attributes"]["exception.type"] == "ValueError"
    assert boom["attributes"]["exception.message"] == "bad input"
    assert "Traceback" in boom["attributes"]["exception.stacktrace"]
    bg = run.spans_of("test_2_background")
    assert {s["attributes"]["halo.test.outcome"] for s in bg} == {"passed"}
    assert run.tests[next(k for k in run.tests if k.endswith("test_2_background"))]["trace_ids"] == [bg[0]["trace_id"]]
    assert all(s["kind"] == "SPAN_KIND_INTERNAL" and len(s["trace_id"]) == 32 and len(s["span_id"]) == 16
               for s in run.spans)


def test_provider_set_before_halo_manual_api_phases_and_caps(pytester, run_halo, monkeypatch):
    pytester.makeconftest(BEFORE_CONFTEST)
    pytester.makepyfile(test_before=BEFORE_TESTS)
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100")
    run = run_halo("--halo", "--halo-skip-analysis")
    assert run.ret == 0, run.output()
    app = run.spans_of("test_app_provider_keeps_working")
    phases = {s["name"]: s["attributes"]["halo.test.phase"] for s in app}
    assert phases == {"fixture-setup": "setup", "in-test": "call", "fixture-teardown": "teardown"}
    assert {s["resource"]["attributes"]["service.name"] for s in app} == {"shop"}

    manual = run.spans_of("test_manual_api")
    by_name = {}
    for s in manual:
        by_name.setdefault(s["name"], []).append(s)
    assert sorted(by_name) == ["plan", "researcher", "search"] and len(by_name["search"]) == 2
    assert len({s["trace_id"] for s in manual}) == 1
    agent = by_name["researcher"][0]
    assert all(s["parent_span_id"] == agent["span_id"] for s in manual if s is not agent)
    assert run.categories(manual) == {"agent": 1, "llm": 1, "tool": 2}
    plan = by_name["plan"][0]["attributes"]
    assert plan["llm.model_name"] == "tiny-1"
    assert plan["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "browse"
    assert plan["llm.token_count.prompt"] == 11
    assert len(plan["output.value"]) == 100 and "output.value" in plan["halo.truncated_attributes"]
    failed = [s for s in by_name["search"] if s["status"]["code"] == "STATUS_CODE_ERROR"]
    assert len(failed) == 1 and failed[0]["attributes"]["exception.message"] == "search backend down"
    ok = next(s for s in by_name["search"] if s is not failed[0])["attributes"]
    assert ok["input.value"] == "cats" and ok["output.value"] == '["result for cats"]'


INERT = '''
import sys

def test_nothing_heavy_loaded():
    assert "pytest_halo.runtime" not in sys.modules
    assert "opentelemetry" not in sys.modules
    assert "agents" not in sys.modules
'''


@pytest.mark.parametrize("args", [(), ("-p", "no:halo")], ids=["not-enabled", "no-halo"])
def test_inert_unless_enabled(pytester, run_halo, args):
    pytester.makepyfile(test_inert=INERT + ("\n\ndef test_plugin_not_loaded():\n    assert 'pytest_halo.plugin' not in sys.modules\n"
                                            if args else ""))
    run = run_halo(*args, "-p", "no:langsmith_plugin")  # langsmith's own pytest plugin imports opentelemetry
    assert run.ret == 0, run.output()
    assert not run.dir.exists()
    assert "halo:" not in run.output()
