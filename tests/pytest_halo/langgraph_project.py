"""An inner pytest project: a LangGraph tool-calling agent on ``ChatOpenAI`` against a loopback fake server.

Nothing of halo or of the frameworks is mocked: the graph is a real ``StateGraph`` with a real
``ToolNode``, the model is the real ``langchain_openai.ChatOpenAI`` speaking HTTP to a scripted
Chat Completions server on 127.0.0.1, and spans come from OpenInference's ``LangChainInstrumentor``.

Planted, each recurring across tests:

* ``get_weather`` raises for Atlantis; ``ToolNode(handle_tool_errors=True)`` hands the error back to the
  model as a ``ToolMessage`` (the tool span records the exception) — from ``invoke``, ``ainvoke`` and a
  turn with two parallel calls (run on ToolNode's thread pool);
* the model asks for ``book_flight``, which the graph does not have; ``ToolNode`` answers with its
  "is not a valid tool" message (no tool runs, so no tool span: the error is only in the next input);
* the model keeps calling ``get_time`` until LangGraph raises ``GraphRecursionError``.
"""

from __future__ import annotations

import fake_chat_server

# ``LG_TRACER_PROVIDER=app``: the app builds and registers its own SDK TracerProvider with its own exporter
# and hands it to the instrumentor (halo must attach to it, and the app's exporter must still get every
# span); otherwise the instrumentor is set up the short way and uses the global provider.
CONFTEST = fake_chat_server.source() + '''
import json, os

from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

APP_EXPORTER = InMemorySpanExporter()
if os.environ.get("LG_TRACER_PROVIDER") == "app":
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(APP_EXPORTER))
    trace.set_tracer_provider(provider)
    LangChainInstrumentor().instrument(tracer_provider=provider)
else:
    LangChainInstrumentor().instrument()


def pytest_unconfigure(config):
    with open(f"app-exporter-{os.getpid()}.json", "w") as fh:
        json.dump({"spans": len(APP_EXPORTER.get_finished_spans())}, fh)


def script(messages):
    """What the model says next, decided by the question and the tool results it was handed."""
    question = next(m["content"] for m in messages if m["role"] == "user")
    results = [m["content"] for m in messages if m["role"] == "tool"]
    city = question.split()[-1]
    if question.startswith("keep"):
        return [("get_time", {"city": city})]  # never satisfied: runs into the recursion limit
    if results:
        return "Here is what I found: " + results[-1]
    if question.startswith("book"):
        return [("book_flight", {"destination": city})]  # not a tool of this agent
    if question.startswith("time"):
        return [("get_time", {"city": city})]
    if question.startswith("compare"):  # parallel tool calls: ToolNode runs them on a thread pool
        return [("get_weather", {"city": c}) for c in question.split()[1:]]
    return [("get_weather", {"city": city})]


base_url = chat_server_fixture(script, usage=lambda messages: (30 + len(messages), 9))


class BrokenDetector:
    """A user detector with a bug: the analysis must switch it off and keep the exit status."""

    name = "broken_user_detector"

    def on_run(self, run):
        raise ZeroDivisionError("user detector bug")


def pytest_halo_detectors(config):
    return [BrokenDetector()]
'''

TESTS = '''
import asyncio

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    if city == "Atlantis":
        raise ConnectionError(f"weather service has no station in {city}")
    return f"sunny in {city}"


@tool
def get_time(city: str) -> str:
    """Local time in a city."""
    return f"09:30 in {city}"


TOOLS = [get_weather, get_time]


def build_agent(base_url):
    model = ChatOpenAI(model="fake-gpt", base_url=base_url, api_key="offline", max_retries=0).bind_tools(TOOLS)

    def call_model(state: MessagesState):
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", call_model)
    graph.add_node("tools", ToolNode(TOOLS, handle_tool_errors=True))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(name="travel_assistant")


def ask(base_url, question):
    state = build_agent(base_url).invoke({"messages": [HumanMessage(question)]}, {"recursion_limit": 6})
    return state["messages"][-1].content


@pytest.mark.parametrize("city", ["Paris", "Rome"])
def test_weather(base_url, city):
    assert "sunny" in ask(base_url, f"weather in {city}")


def test_time(base_url):
    assert "09:30" in ask(base_url, "time in Tokyo")


def test_atlantis(base_url):
    assert "sunny" in ask(base_url, "weather in Atlantis")


def test_atlantis_async(base_url):
    state = asyncio.run(build_agent(base_url).ainvoke({"messages": [HumanMessage("forecast for Atlantis")]}))
    assert "sunny" in state["messages"][-1].content


def test_compare_with_atlantis(base_url):
    assert "sunny" in ask(base_url, "compare Paris Atlantis")


@pytest.mark.parametrize("city", ["Lisbon", "Oslo"])
def test_book_flight(base_url, city):
    assert "booked" in ask(base_url, f"book a flight to {city}")


@pytest.mark.parametrize("city", ["Tokyo", "Lima"])
def test_keeps_checking_time(base_url, city):
    assert "09:30" in ask(base_url, f"keep checking the time in {city}")
'''

PASSING = ("test_weather[Paris]", "test_weather[Rome]", "test_time")
TOOL_ERROR = ("test_atlantis", "test_atlantis_async", "test_compare_with_atlantis")
HALLUCINATED = ("test_book_flight[Lisbon]", "test_book_flight[Oslo]")
RECURSION = ("test_keeps_checking_time[Tokyo]", "test_keeps_checking_time[Lima]")
