"""openai client + OpenInference's OpenAIInstrumentor against a loopback fake Chat Completions server."""

from __future__ import annotations

import pytest
from conftest import FAKE_CHAT_SERVER

CONFTEST = "from openinference.instrumentation.openai import OpenAIInstrumentor\n\nOpenAIInstrumentor().instrument()\n" + FAKE_CHAT_SERVER

TESTS = '''
import json

import pytest
from openai import OpenAI
from opentelemetry import trace

tracer = trace.get_tracer("shop-harness")
PRICES = {"apple": "1.20", "pear": "0.90"}
TOOLS = [{"type": "function", "function": {"name": "get_price", "description": "Price of an item",
          "parameters": {"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]}}}]


def get_price(item):
    with tracer.start_as_current_span("get_price") as span:
        span.set_attribute("openinference.span.kind", "TOOL")
        span.set_attribute("tool.name", "get_price")
        span.set_attribute("input.value", json.dumps({"item": item}))
        try:
            price = PRICES[item]
        except KeyError as exc:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"unknown item {item}"))
            return f"error: unknown item {item}"
        span.set_attribute("output.value", price)
        return price


def shop_agent(base_url, question):
    client = OpenAI(base_url=base_url, api_key="offline", max_retries=0)
    with tracer.start_as_current_span("shop_agent") as span:
        span.set_attribute("openinference.span.kind", "AGENT")
        span.set_attribute("gen_ai.agent.name", "shop")
        messages = [{"role": "user", "content": question}]
        for _ in range(3):
            reply = client.chat.completions.create(model="fake-gpt", messages=messages, tools=TOOLS)
            msg = reply.choices[0].message
            if not msg.tool_calls:
                return msg.content
            messages.append(msg.model_dump(exclude_none=True))
            for call in msg.tool_calls:
                result = get_price(**json.loads(call.function.arguments))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        return "gave up"


@pytest.mark.parametrize("item", ["apple", "pear", "kiwi", "mango"])
def test_price(base_url, item):
    answer = shop_agent(base_url, f"what does it cost: {item}")
    assert "error" not in answer
'''


@pytest.fixture
def openinference_suite(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_shop=TESTS)


def _check(run) -> None:
    assert run.ret == 1
    run.result.assert_outcomes(passed=2, failed=2)
    for nodeid, rec in run.tests.items():
        spans = run.spans_of(nodeid)
        cats = run.categories(spans)
        assert cats == {"agent": 1, "llm": 2, "tool": 1}, (nodeid, cats)
        assert len(rec["trace_ids"]) == 1
        llm = [s for s in spans if run.categories([s])["llm"]]
        first = min(llm, key=lambda s: s["start_time"])["attributes"]
        assert first["llm.model_name"] == "fake-gpt"
        assert first["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "get_price"
        assert first["llm.token_count.prompt"] == 20
        assert "get_price" in first["llm.tools.0.tool.json_schema"]
        assert first["openinference.span.kind"] == "LLM"
        assert {s["scope"]["name"] for s in llm} == {"openinference.instrumentation.openai"}
        tool = next(s for s in spans if run.categories([s])["tool"])
        failing = nodeid.endswith(("[kiwi]", "[mango]"))
        assert rec["outcome"] == ("failed" if failing else "passed")
        assert (tool["status"]["code"] == "STATUS_CODE_ERROR") is failing
        if failing:
            assert tool["attributes"]["exception.type"] == "KeyError"
        # resource and scope are carried over from the SDK
        assert spans[0]["resource"]["attributes"]["telemetry.sdk.name"] == "opentelemetry"


def test_openinference_openai_serial_and_xdist(openinference_suite, run_halo):
    serial = run_halo("--halo", "--halo-skip-analysis")
    _check(serial)
    parallel = run_halo("--halo", "--halo-skip-analysis", workers=2)
    _check(parallel)
    assert serial.counts_by_test() == parallel.counts_by_test()
    assert len(serial.spans) == len(parallel.spans) == 16
