"""pydantic-ai end to end: FunctionModel + its own OTel instrumentation, planted failing tool; serial and -n 2."""

from __future__ import annotations

import pytest

TESTS = '''
import pytest
from pydantic_ai import Agent, InstrumentationSettings
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel


def scripted(messages, info: AgentInfo):
    returns = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
    if returns:
        return ModelResponse(parts=[TextPart(f"stock: {returns[-1].content}")])
    sku = messages[0].parts[-1].content.split()[-1]
    return ModelResponse(parts=[ToolCallPart("check_stock", {"sku": sku})])


Agent.instrument_all(InstrumentationSettings())  # pydantic-ai's own OTel (gen_ai) instrumentation
agent = Agent(FunctionModel(scripted, model_name="scripted-fn"), name="inventory")


@agent.tool_plain
def check_stock(sku: str) -> str:
    """How many units of a SKU are in stock."""
    if sku.startswith("X-"):
        raise LookupError(f"discontinued SKU {sku} has no stock record")
    return f"{sku}: 12 units"


@pytest.mark.parametrize("sku", ["A-1", "B-2", "X-9", "X-10", "X-11"])
def test_stock(sku):
    result = agent.run_sync(f"how many of {sku}")
    assert "12 units" in result.output
'''


@pytest.fixture
def pydantic_ai_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inventory=TESTS)


def _check(run) -> None:
    assert run.ret == 1
    run.result.assert_outcomes(passed=2, failed=3)
    assert sorted(v["outcome"] for v in run.tests.values()) == ["failed"] * 3 + ["passed"] * 2
    for nodeid, rec in run.tests.items():
        spans = run.spans_of(nodeid)
        cats = run.categories(spans)
        assert cats["agent"] == 1 and cats["tool"] == 1 and cats["llm"] >= 1, (nodeid, cats)
        assert {s["attributes"]["halo.test.outcome"] for s in spans} == {rec["outcome"]}
        assert rec["trace_ids"] == list(dict.fromkeys(s["trace_id"] for s in spans)) or set(
            rec["trace_ids"]) == {s["trace_id"] for s in spans}
        tool = next(s for s in spans if run.categories([s])["tool"])
        if "X-" in nodeid:
            assert rec["outcome"] == "failed" and "discontinued SKU" in rec["reason"]
            assert tool["status"]["code"] == "STATUS_CODE_ERROR"
            assert tool["attributes"]["exception.type"] == "LookupError"
            assert "discontinued SKU" in tool["attributes"]["exception.message"]
        else:
            assert tool["status"]["code"] != "STATUS_CODE_ERROR"
    scopes = {s["scope"]["name"] for s in run.spans}
    assert any("pydantic" in s for s in scopes), scopes
    llm = [s for s in run.spans if run.categories([s])["llm"]]
    assert all(s["attributes"].get("gen_ai.request.model") == "scripted-fn" for s in llm)


def test_pydantic_ai_instrumentation_serial_and_xdist(pydantic_ai_suite, run_halo):
    serial = run_halo("--halo", "--halo-skip-analysis")
    _check(serial)
    parallel = run_halo("--halo", "--halo-skip-analysis", workers=2)
    _check(parallel)
    assert serial.counts_by_test() == parallel.counts_by_test()
    assert serial.categories() == parallel.categories()
    assert len(serial.spans) == len(parallel.spans)
