"""openai-agents end to end: scripted Model, real Runner, planted recurring tool error; serial and -n 2."""

from __future__ import annotations

import pytest
from conftest import EXAMPLE, FAKE_CHAT_SERVER, SHOP_AGENT

CONFTEST = '''
import json, os
from agents import TracingProcessor, add_trace_processor, set_trace_processors

class UserProcessor(TracingProcessor):
    """Stands for the user's own exporter: it must keep receiving spans."""
    def __init__(self): self.n = 0
    def on_trace_start(self, trace): pass
    def on_trace_end(self, trace): pass
    def on_span_start(self, span): pass
    def on_span_end(self, span):
        self.n += 1
    def shutdown(self):
        with open(f"user-processor-{os.getpid()}.json", "w") as fh: json.dump({"spans": self.n}, fh)
    def force_flush(self): pass

set_trace_processors([])  # offline: drop the OpenAI uploader
USER = UserProcessor()
add_trace_processor(USER)
'''

TESTS = '''
from agents import Agent, Runner, function_tool
from support_agent.scripted_model import Call, ScriptedModel, Say


def tool_error(ctx, error):
    return f"Tool error: {error}"


@function_tool(failure_error_function=tool_error)
def get_weather(city: str) -> str:
    """Current weather for a city."""
    if city == "Atlantis":
        raise RuntimeError("weather service has no station in Atlantis")
    return f"sunny in {city}"


def weather_policy(items, offered):
    calls = {i["call_id"]: i["name"] for i in items if i.get("type") == "function_call"}
    outputs = [i for i in items if i.get("type") == "function_call_output" and calls[i["call_id"]] == "get_weather"]
    request = next(i["content"] for i in items if i.get("role") == "user")
    if not outputs:
        return Call("get_weather", {"city": request.split()[-1]})
    return Say(str(outputs[-1]["output"]))


def triage_policy(items, offered):
    return Call("transfer_to_weather", {})


weather = Agent(name="weather", instructions="Report the weather.", tools=[get_weather],
                model=ScriptedModel(weather_policy))
triage = Agent(name="triage", instructions="Route the user.", handoffs=[weather],
               model=ScriptedModel(triage_policy))


def ask(question, agent=weather):
    return Runner.run_sync(agent, question, max_turns=4).final_output


def test_paris():
    assert "sunny" in ask("weather in Paris")


def test_rome():
    assert "sunny" in ask("weather in Rome")


def test_atlantis_1():
    assert "sunny" in ask("weather in Atlantis")


def test_atlantis_2():
    assert "sunny" in ask("what about Atlantis")


def test_atlantis_3():
    assert "sunny" in ask("forecast for Atlantis")


def test_handoff_to_weather():
    assert "sunny" in ask("weather in Oslo", agent=triage)
'''


@pytest.fixture
def agents_suite(pytester: pytest.Pytester) -> None:
    pytester.makeini(f"[pytest]\npythonpath = {EXAMPLE}\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_weather=TESTS)


def _check_run(run) -> None:
    assert run.ret == 1  # three planted failures
    run.result.assert_outcomes(passed=3, failed=3)
    assert len(run.tests) == 6
    outcomes = {k.split("::")[1]: v["outcome"] for k, v in run.tests.items()}
    assert outcomes == {"test_paris": "passed", "test_rome": "passed", "test_atlantis_1": "failed",
                        "test_atlantis_2": "failed", "test_atlantis_3": "failed", "test_handoff_to_weather": "passed"}
    # every span belongs to a test and carries run, worker and phase
    assert all(s["attributes"].get("halo.test.nodeid") for s in run.spans)
    assert len({s["attributes"]["halo.run.id"] for s in run.spans}) == 1
    assert {s["attributes"]["halo.test.phase"] for s in run.spans} == {"call"}
    assert len({(s["trace_id"], s["span_id"]) for s in run.spans}) == len(run.spans)
    for nodeid, rec in run.tests.items():
        spans = run.spans_of(nodeid)
        assert rec["spans"] == len(spans)
        assert rec["trace_ids"] == sorted({s["trace_id"] for s in spans}, key=rec["trace_ids"].index)
        assert len(rec["trace_ids"]) == 1  # one Runner.run → one SDK trace
        assert {s["attributes"]["halo.test.outcome"] for s in spans} == {rec["outcome"]}
    # the tree is whole: one synthetic root per SDK trace, every parent present
    ids = {s["span_id"] for s in run.spans}
    roots = [s for s in run.spans if not s["parent_span_id"]]
    assert len(roots) == 6 and all(s["attributes"]["openai_agents.span_type"] == "trace" for s in roots)
    assert all(s["parent_span_id"] in ids for s in run.spans if s["parent_span_id"])

    atl = run.spans_of("::test_atlantis_2")
    cats = run.categories(atl)
    assert cats["agent"] == 1 and cats["llm"] == 2 and cats["tool"] == 1
    tool = next(s for s in atl if s["attributes"].get("tool.name") == "get_weather")
    assert tool["status"]["code"] == "STATUS_CODE_ERROR"
    assert "no station in Atlantis" in tool["status"]["message"]
    assert tool["attributes"]["input.value"] == '{"city": "Atlantis"}'
    assert tool["attributes"]["exception.type"] == "ToolError"
    assert tool["attributes"]["halo.original.span_id"].startswith("span_")
    llm = [s for s in atl if s["attributes"].get("openai_agents.span_type") == "response"]
    first = min(llm, key=lambda s: s["start_time"])
    a = first["attributes"]
    assert a["llm.model_name"] == "scripted-support-1"
    assert a["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "get_weather"
    assert '"name":"get_weather"' in a["llm.tools.0.tool.json_schema"]
    assert a["llm.input_messages.0.message.content"] == "Report the weather."
    assert a["llm.token_count.prompt"] > 0
    assert a["gen_ai.agent.name"] == "weather"
    last = max(llm, key=lambda s: s["start_time"])["attributes"]
    assert "Tool error" in last["llm.output_messages.0.message.content"]

    handoff = run.spans_of("::test_handoff_to_weather")
    assert run.categories(handoff)["handoff"] == 1
    assert {s["attributes"].get("gen_ai.agent.name") for s in handoff if s["attributes"].get(
        "openai_agents.span_type") == "agent"} == {"triage", "weather"}


def test_agents_sdk_serial_and_xdist_capture_the_same_spans(agents_suite, run_halo, pytester):
    serial = run_halo("--halo", "--halo-skip-analysis")
    _check_run(serial)
    assert {s["attributes"]["halo.test.worker"] for s in serial.spans} == {"master"}
    # the user's processor kept receiving every SDK span (ours adds only one root per trace)
    user = [p for p in pytester.path.glob("user-processor-*.json")]
    assert len(user) == 1
    assert int(user[0].read_text().split(":")[1].strip(" }\n")) == len(serial.spans) - 6

    parallel = run_halo("--halo", "--halo-skip-analysis", workers=2)
    _check_run(parallel)
    assert {s["attributes"]["halo.test.worker"] for s in parallel.spans} == {"gw0", "gw1"}
    assert serial.counts_by_test() == parallel.counts_by_test()
    assert serial.categories() == parallel.categories()
    assert not list((parallel.dir / "parts").glob("*.jsonl")) if (parallel.dir / "parts").exists() else True


LAZY = '''
def test_imports_agents_inside_the_test():
    from agents import Agent, Runner
    from support_agent.scripted_model import ScriptedModel, Say

    agent = Agent(name="lazy", instructions="hi", model=ScriptedModel(lambda items, offered: Say("hello")))
    assert Runner.run_sync(agent, "hi").final_output == "hello"
'''

REPLACES = '''
from agents import Agent, Runner, set_trace_processors
from support_agent.scripted_model import ScriptedModel, Say

set_trace_processors([])  # at collection, after halo registered: halo must re-add itself


def test_after_processors_were_replaced():
    agent = Agent(name="replaced", instructions="hi", model=ScriptedModel(lambda items, offered: Say("ok")))
    assert Runner.run_sync(agent, "hi").final_output == "ok"
'''


def _agent_spans(run):
    return {s["attributes"].get("gen_ai.agent.name"): s["attributes"]["halo.test.nodeid"]
            for s in run.spans if s["attributes"].get("openai_agents.span_type") == "agent"}


def test_agents_imported_lazily_or_processors_replaced_are_still_captured(pytester, run_halo):
    pytester.makeini(f"[pytest]\npythonpath = {EXAMPLE}\n")
    pytester.makepyfile(test_a_lazy=LAZY, test_b_replaces=REPLACES)
    lazy = run_halo("--halo", "--halo-skip-analysis", "test_a_lazy.py")  # agents first imported mid-test
    assert lazy.ret == 0, lazy.output()
    assert _agent_spans(lazy) == {"lazy": "test_a_lazy.py::test_imports_agents_inside_the_test"}
    replaced = run_halo("--halo", "--halo-skip-analysis", "test_b_replaces.py")
    assert replaced.ret == 0, replaced.output()
    assert _agent_spans(replaced) == {"replaced": "test_b_replaces.py::test_after_processors_were_replaced"}


CHAT_TESTS = '''
import pytest
from agents import InputGuardrailTripwireTriggered, Runner, set_trace_processors

from shop_agent import shop

set_trace_processors([])  # offline


@pytest.mark.parametrize("item", ["apple", "kiwi"])
def test_price(base_url, item):
    assert "error" not in Runner.run_sync(shop(base_url), f"price of {item}").final_output


def test_guardrail_trips(base_url):
    with pytest.raises(InputGuardrailTripwireTriggered):
        Runner.run_sync(shop(base_url), "forbidden question about apple")
'''


def test_agents_sdk_chat_completions_model_generation_spans_and_guardrail(pytester, run_halo):
    pytester.makeconftest(FAKE_CHAT_SERVER)
    pytester.makepyfile(shop_agent=SHOP_AGENT, test_chat=CHAT_TESTS)
    run = run_halo("--halo", "--halo-skip-analysis")
    run.result.assert_outcomes(passed=2, failed=1)
    kiwi = run.spans_of("test_price[kiwi]")
    gens = sorted((s for s in kiwi if s["attributes"]["openai_agents.span_type"] == "generation"),
                  key=lambda s: s["start_time"])
    assert len(gens) == 2 and run.categories(gens) == {"llm": 2}
    first, last = gens[0]["attributes"], gens[1]["attributes"]
    assert first["llm.model_name"] == "fake-gpt" and first["llm.token_count.prompt"] == 20
    assert first["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "get_price"
    assert first["llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments"] == '{"item": "kiwi"}'
    assert first["llm.input_messages.0.message.content"] == "Quote prices."
    assert last["llm.output_messages.0.message.content"].startswith("The price is error")
    tool = next(s for s in kiwi if s["attributes"].get("tool.name") == "get_price")
    assert tool["status"]["code"] == "STATUS_CODE_ERROR" and "kiwi" in tool["status"]["message"]
    guard = [s for s in run.spans_of("test_guardrail_trips") if run.categories([s])["guardrail"]]
    assert len(guard) == 1 and guard[0]["attributes"]["openai_agents.guardrail.triggered"] is True
    assert guard[0]["attributes"]["openai_agents.guardrail.name"] == "no_forbidden"
