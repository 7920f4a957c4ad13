"""LangGraph / LangChain spans as OpenInference's ``LangChainInstrumentor`` records them, read right.

The end-to-end version (real LangGraph, real instrumentation, ``pytest --halo``) is
``tests/pytest_halo/test_halo_langgraph.py``; these pin each reading on hand-built spans.
"""

from __future__ import annotations

import traceback

from spanbuilder import Run, flatten

from engine.analysis.config import AnalysisConfig
from engine.analysis.detectors.tool_errors import is_unknown_tool_error
from engine.analysis.pipeline import analyze_spans

# langgraph.prebuilt.tool_node.INVALID_TOOL_NAME_ERROR_TEMPLATE, filled in as ToolNode does
LANGGRAPH_INVALID_TOOL = "Error: {requested_tool} is not a valid tool, try one of [{available_tools}]."


def langchain_run_error(exc: BaseException) -> str:
    """``Run.error`` (LangChain's ``_get_stacktrace``), which OpenInference makes the status message."""
    return (repr(exc) + "\n\n".join(traceback.format_exception(exc))).strip()


def _raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:
        return caught


def _tool_message_turn(run: Run, name: str, content: str) -> None:
    """The model's next call, handed ToolNode's answer to its request for ``name`` (flattened input messages)."""
    p = "llm.input_messages."
    run.span("ChatOpenAI", {
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
        f"{p}0.message.role": "user", f"{p}0.message.content": "book a flight",
        f"{p}1.message.role": "assistant", f"{p}1.message.tool_calls.0.tool_call.id": "call_0",
        f"{p}1.message.tool_calls.0.tool_call.function.name": name,
        f"{p}1.message.tool_calls.0.tool_call.function.arguments": "{}",
        f"{p}2.message.role": "tool", f"{p}2.message.content": content,
        f"{p}2.message.tool_call_id": "call_0", f"{p}2.message.name": name,
        "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "Sorry.",
    })


def test_toolnode_invalid_tool_message_names_a_missing_tool() -> None:
    message = LANGGRAPH_INVALID_TOOL.format(requested_tool="book_flight", available_tools="get_weather, get_time")
    assert is_unknown_tool_error(message)
    assert not is_unknown_tool_error("Error: ValueError('the city is not a valid IATA code')")


def test_toolnode_invalid_tool_is_a_hallucinated_tool_not_an_error_of_that_tool() -> None:
    """No tool span exists for a name the graph lacks: ToolNode's answer in the next input is the only record."""
    runs = []
    for i in range(3):
        r = Run(i, nodeid=f"t.py::test_{i}", outcome="failed")
        r.llm(calls=[("book_flight", "{}")])  # tools offered not recorded: only the answer can tell
        _tool_message_turn(r, "book_flight", LANGGRAPH_INVALID_TOOL.format(
            requested_tool="book_flight", available_tools="get_weather, get_time"))
        runs.append(r)
    f = analyze_spans(flatten(runs), config=AnalysisConfig())
    modes = {(m.detector, m.key): m.run_count for m in f.failure_modes}
    assert modes == {("hallucinated_tool", "book_flight"): 3}, modes


def test_langchain_tool_error_is_keyed_by_the_exception_message_not_its_repr() -> None:
    """LangChain's status is ``repr(exc)`` + traceback: its quotes are repr's, not the error's own."""
    errors = [ConnectionError("weather service has no station in Atlantis")] * 3 + [
        ConnectionError("weather service timed out")] * 2
    runs = []
    for i, exc in enumerate(errors):
        r = Run(i, nodeid=f"t.py::test_{i}", outcome="failed")
        r.llm(calls=[("get_weather", '{"city": "x"}')])
        sid = r.tool("get_weather", "x", "", error=langchain_run_error(_raised(exc)))
        r.spans[-1]["attributes"].update({"exception.type": "ConnectionError", "exception.message": str(exc)})
        assert r.spans[-1]["span_id"] == sid
        r.llm(text="Sorry.")
        runs.append(r)
    f = analyze_spans(flatten(runs), config=AnalysisConfig())
    titles = {m.title: m.run_count for m in f.failure_modes if m.detector == "tool_error"}
    assert titles == {"Tool `get_weather` fails: weather service has no station in Atlantis": 3,
                      "Tool `get_weather` fails: weather service timed out": 2}, titles
