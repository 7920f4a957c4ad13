"""Real-data cases that produced wrong findings, each reproduced exactly."""

from __future__ import annotations

import traceback

from spanbuilder import Run, flatten

from engine.analysis.config import AnalysisConfig
from engine.analysis.pipeline import analyze_spans
from engine.analysis.templates import template_of


def langchain_run_error(exc: BaseException) -> str:
    """``Run.error`` as LangChain's tracer records it (``_get_stacktrace``): repr glued to the traceback."""
    return (repr(exc) + "\n\n".join(traceback.format_exception(exc))).strip()


def _raise(city: str) -> BaseException:
    try:
        raise ValueError(f"no flights to {city} on 2024-05-0{len(city) % 9}")
    except ValueError as exc:
        return exc


def test_langchain_tool_error_titles_carry_the_error_not_a_traceback_header() -> None:
    message = langchain_run_error(_raise("Oslo"))
    assert message.splitlines()[0].endswith("Traceback (most recent call last):")  # the case under test
    runs = []
    for i, city in enumerate(["Oslo", "Rome", "Lima"]):
        r = Run(i)
        r.tool("book_flight", f'{{"city": "{city}"}}', "", error=langchain_run_error(_raise(city)))
        runs.append(r)
    f = analyze_spans(flatten(runs), config=AnalysisConfig())
    titles = [m.title for m in f.failure_modes if m.detector == "tool_error"]
    assert titles == ["Tool `book_flight` fails: ValueError('<*>')"], titles  # quoted values are masked
    assert not any("Traceback" in m.title for m in f.failure_modes)


def test_bare_traceback_is_keyed_by_its_exception_line() -> None:
    text = "".join(traceback.format_exception(_raise("Rome")))
    assert text.startswith("Traceback (most recent call last):")
    assert template_of(text) == "ValueError: no flights to Rome on <*>"


def genai_chat(run: Run, inputs: list[dict], outputs: list[dict]) -> None:
    """A GenAI-convention chat span with content captured as JSON messages (parts), as newer instrumentations write."""
    import json

    run.span("chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                             "gen_ai.input.messages": json.dumps(inputs), "gen_ai.output.messages": json.dumps(outputs)})


def test_genai_tool_call_responses_with_errors_are_tool_errors() -> None:
    runs = []
    for i in range(3):
        r = Run(i)
        call = {"type": "tool_call", "id": f"call_{i}", "name": "refund", "arguments": {"order": f"A{i}"}}
        user = {"role": "user", "parts": [{"type": "text", "content": "refund my order"}]}
        genai_chat(r, [user], [{"role": "assistant", "parts": [call]}])
        response = {"type": "tool_call_response", "id": f"call_{i}", "response": f"Error: order A{i} is not refundable"}
        genai_chat(r, [user, {"role": "assistant", "parts": [call]}, {"role": "tool", "parts": [response]}],
                   [{"role": "assistant", "parts": [{"type": "text", "content": "Sorry, I cannot refund it."}]}])
        runs.append(r)
    f = analyze_spans(flatten(runs), config=AnalysisConfig())
    modes = {m.title: m.run_count for m in f.failure_modes if m.detector == "tool_error"}
    assert modes == {"Tool `refund` fails: Error: order <*> is not refundable": 3}, modes
