"""``pytest --halo --halo-model M --halo-base-url URL``: the engine runs at the end of a test session."""

from __future__ import annotations

import json
import os

import pytest
from scripted_server import calls, role_of, tool_results, turn_of

from engine.findings import Findings

INNER = '''
import pytest
from pytest_halo import trace_agent, trace_tool

@trace_tool("lookup_order")
def lookup_order(order_id):
    if order_id.startswith("x"):
        raise ValueError(f"order {order_id} not found in region EU")
    return {"order": order_id, "status": "shipped"}

@pytest.mark.parametrize("order_id", ["x1", "x2", "x3", "a1", "a2"])
def test_support(order_id):
    with trace_agent("support"):
        try:
            lookup_order(order_id)
        except ValueError:
            pytest.fail("could not help")
'''


def plugin_script(req, n):
    if role_of(req) != "root":
        return calls(("final_answer", {"answer": "n/a"}))
    if turn_of(req) == 0:
        return calls(("query_traces", {"filters": {"has_errors": True, "test_outcome": "failed"}}))
    traces = json.loads(tool_results(req, "query_traces")[0])["traces"]
    return calls(("final_answer", {
        "answer": "# Orders\nLookups of x-orders fail.",
        "failure_modes": [{"title": "lookup_order cannot find EU orders", "category": "tool_error",
                           "evidence": [{"trace_id": t["trace_id"]} for t in traces[:2]],
                           "signature": {"tool_name": "lookup_order", "field": "error",
                                         "regex": r"not found in region EU"},
                           "confidence": 0.9}]}))


@pytest.fixture
def halo_env(tmp_path, monkeypatch) -> None:
    """The inner runs see no HALO_*/OTEL_*/xdist settings or API key of ours, and a private LLM cache."""
    for key in list(os.environ):
        if key.startswith(("HALO", "OTEL_", "PYTEST_XDIST_", "PYTEST_ADDOPTS")) or key == "OPENAI_API_KEY":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def orders_project(pytester, scripted, halo_env):
    """The order-lookup suite, and the scripted server (``plugin_script``) its LLM analysis talks to."""
    pytester.makepyfile(test_orders=INNER)
    return scripted(plugin_script)


def test_pytest_halo_with_a_model(pytester, orders_project):
    srv = orders_project
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--halo", "--halo-model", "gpt-4o-mini", "--halo-base-url", srv.url,
        "--halo-prompt", "why do order lookups fail?", "--halo-max-turns", "6", "--halo-llm-max-tokens", "50000",
        "--halo-fail-on", "never", timeout=120)
    assert result.ret == 1  # the three failing tests; halo leaves the exit status alone
    assert len(srv.by_role("root")) == 2
    assert "why do order lookups fail?" in srv.requests[0]["messages"][1]["content"]
    assert "maximum_depth=2" in srv.requests[0]["messages"][0]["content"]
    f = Findings.read(pytester.path / ".halo" / "findings.json")
    llm = [m for m in f.failure_modes if m.signature and m.signature.tool_name == "lookup_order"]
    assert llm and llm[0].source in ("llm", "both") and llm[0].run_count == 3
    assert (pytester.path / ".halo" / "engine-traces.jsonl").is_file()
    assert f.llm is not None and f.llm.model == "gpt-4o-mini" and f.llm.requests == len(srv.requests)
    result.stdout.fnmatch_lines([f"halo: LLM gpt-4o-mini · {len(srv.requests)} requests (0 cached)*"])
    assert "Lookups of x-orders fail." in (pytester.path / ".halo" / "llm-report.md").read_text()
    assert (pytester.path / ".halo" / "report.html").is_file()


GREEN = '''
from pytest_halo import trace_tool

@trace_tool("lookup_order")
def lookup_order(order_id):
    return {"order": order_id}

def test_ok():
    assert lookup_order("a1")
'''


def test_pytest_halo_provider_down_is_one_line_and_exit_3_only_when_strict(pytester, halo_env):
    pytester.makepyfile(test_green=GREEN)
    args = ["-p", "no:cacheprovider", "--halo", "--halo-model", "gpt-4o-mini", "--halo-base-url",
            "http://127.0.0.1:9/v1", "--halo-llm-timeout", "3"]
    relaxed = pytester.runpytest_subprocess(*args, timeout=120)
    assert relaxed.ret == 0
    out = relaxed.stdout.str()
    said = [x for x in out.splitlines() if x.startswith("halo: LLM gpt-4o-mini")]
    assert len(said) == 1 and "stopped: error: cannot reach the provider" in said[0]
    assert "Traceback" not in out and (pytester.path / ".halo" / "findings.json").is_file()
    strict = pytester.runpytest_subprocess(*args, "--halo-strict", timeout=120)
    assert strict.ret == 3
    strict.stdout.fnmatch_lines(["halo: the LLM engine failed and --halo-strict is set: exit status 3"])


def test_plugin_price_makes_the_cost_budget_enforceable(pytester, orders_project, monkeypatch):
    """A model the price table lacks: --halo-llm-max-cost says at start it cannot be enforced, until
    --halo-price (here HALO_PRICE) gives its price; then the dollars are counted and the budget holds."""
    srv = orders_project
    args = ["-p", "no:cacheprovider", "--halo", "--halo-model", "qwen2.5:14b", "--halo-base-url", srv.url,
            "--halo-llm-max-cost", "0.0005", "--halo-fail-on", "never"]
    result = pytester.runpytest_subprocess(*args, timeout=120)
    lines = [ln for ln in result.stderr.lines if "cannot be enforced" in ln]
    assert len(lines) == 1 and "no price known for qwen2.5:14b" in lines[0], result.stderr.str()
    f = Findings.read(pytester.path / ".halo" / "findings.json")
    assert f.llm is not None and f.llm.cost_usd is None and f.llm.stopped_because == "finished"

    monkeypatch.setenv("HALO_PRICE", "qwen2.5:14b=2.5/10")  # 100 in + 20 out a request: $0.00045
    result = pytester.runpytest_subprocess(*args, "--halo-compact-at", "0.5", timeout=120)
    assert "cannot be enforced" not in result.stderr.str()
    f = Findings.read(pytester.path / ".halo" / "findings.json")
    assert f.llm is not None and f.llm.cost_usd == round(f.llm.requests * 0.00045, 6)
    assert "root@0 told to wrap up (max_cost)" in result.stderr.str()  # $0.00045 is past 80% of $0.0005
