"""Multi-agent conversation logs (the public Who&When shape: Magentic-One and AutoGen group chats).

Both real layouts are built here with their real field names: Magentic-One's speaker in ``role``
(``Orchestrator (thought)``, ``Orchestrator (-> WebSurfer)``, ``WebSurfer``, ``human``) with the
flag spelled ``is_corrected``; AutoGen's speaker in ``name`` with ``role`` ``user``/``assistant``
and ``is_correct``. Each used to be read as a SWE-agent trajectory: one empty span per file,
nothing skipped, outcome "passed".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.analysis.assemble import TestIndex as RunIndex  # "Test*" names would be collected
from engine.analysis.config import AnalysisConfig
from engine.analysis.pipeline import analyze_paths
from engine.traces import conventions
from engine.traces.ingest import NOT_TRACE_DATA, IngestStats, detect_format, iter_spans
from engine.traces.normalize import normalize
from engine.traces.problems import Problems
from engine.traces.store import TraceStore

QUESTION = "Where can I take martial arts classes within a five-minute walk from the NYSE after work (7-9 pm)?"


def magentic_one(flag: bool, pages: int = 2) -> dict[str, Any]:
    """A Hand-Crafted Who&When log: the speaker is the role."""
    history: list[dict[str, Any]] = [
        {"content": QUESTION + "\n", "role": "human"},
        {"content": "Initial plan:\n\nWe are working to address the following user request: ...", "role": "Orchestrator (thought)"},
    ]
    for i in range(pages):
        history += [
            {"content": "Updated Ledger:\n{\"is_request_satisfied\": {\"answer\": false}}", "role": "Orchestrator (thought)"},
            {"content": f"Please search for martial arts schools near the NYSE, page {i + 1}.",
             "role": "Orchestrator (-> WebSurfer)"},
            {"content": f"I typed 'martial arts schools near the New York Stock Exchange' into the search box. {i}",
             "role": "WebSurfer"},
        ]
    history.append({"content": "FINAL ANSWER: Alliance Jiu Jitsu, NY Jidokwan Taekwondo", "role": "Orchestrator (final answer)"})
    return {"history": history, "question": QUESTION, "groundtruth": "Renzo Gracie Jiu-Jitsu Wall Street",
            "is_corrected": flag, "question_ID": "6e3be83d1949fa52", "mistake_agent": "WebSurfer",
            "mistake_step": "12", "mistake_reason": "WebSurfer clicks on an irrelevant website."}


def autogen(flag: bool) -> dict[str, Any]:
    """An Algorithm-Generated Who&When log: the speaker is ``name``; ``role`` is only the chat-API side."""
    return {
        "is_correct": flag,
        "question": "How many of these clients will be receiving the sunset awning design?",
        "question_ID": "4d51c4bf-4b0e-4f3d-897b-3f6687a7d9f2",
        "level": "2",
        "ground_truth": "8",
        "history": [
            {"content": "You are given: (1) a task and advises from your manager...\n```python\nprint(4)\n```",
             "role": "assistant", "name": "Excel_Expert"},
            {"content": "exitcode: 0 (execution succeeded)\nCode output: 4\n", "name": "Computer_terminal", "role": "user"},
            {"content": "Let's break down and verify the code step-by-step.", "name": "BusinessLogic_Expert", "role": "user"},
            {"content": "The number of clients receiving the sunset awning design is **4**.",
             "name": "DataVerification_Expert", "role": "user"},
            {"content": "TERMINATE", "name": "DataVerification_Expert", "role": "user"},
        ],
        "mistake_agent": "Excel_Expert",
        "mistake_step": 0,
        "mistake_reason": "The code failed to handle edge cases in the 'Street Address' data.",
        "system_prompt": {"Excel_Expert": "## Your role\nExcel_Expert: Expert in analyzing Excel files."},
    }


def write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=4))
    return path


def test_magentic_one_log_is_one_span_per_message_of_its_agent(tmp_path: Path) -> None:
    path = write(tmp_path / "Hand-Crafted" / "1.json", magentic_one(False))
    assert detect_format(path) == "multi_agent"
    problems = Problems()
    spans = list(iter_spans([path], problems))
    assert problems.skipped_total == 0
    root, msgs = spans[0], spans[1:]
    assert len(msgs) == len(magentic_one(False)["history"])
    assert {s["trace_id"] for s in spans} == {root["trace_id"]}
    assert all(s["parent_span_id"] == root["span_id"] for s in msgs)
    assert {s["attributes"][conventions.TEST_OUTCOME] for s in spans} == {"failed"}  # is_corrected: false
    assert {s["attributes"][conventions.TEST_NODEID] for s in spans} == {"multi-agent::Hand-Crafted/1"}
    views = [normalize(s) for s in msgs]
    assert [v.agent_name for v in views] == [
        None, "Orchestrator", "Orchestrator", "Orchestrator", "WebSurfer", "Orchestrator", "Orchestrator",
        "WebSurfer", "Orchestrator",
    ]
    assert views[0].category == "chain"  # the human's question
    assert views[-1].output_text == "FINAL ANSWER: Alliance Jiu Jitsu, NY Jidokwan Taekwondo"
    handoff = msgs[3]["attributes"]
    assert (handoff["multi_agent.addressed_to"], msgs[3]["name"]) == ("WebSurfer", "Orchestrator -> WebSurfer")
    assert msgs[1]["attributes"]["multi_agent.note"] == "thought"
    assert root["attributes"]["multi_agent.annotation.mistake_agent"] == "WebSurfer"
    assert root["attributes"]["input.value"] == QUESTION


def test_autogen_log_speaker_is_the_name_and_flag_the_outcome(tmp_path: Path) -> None:
    path = write(tmp_path / "Algorithm-Generated" / "1.json", autogen(True))
    assert detect_format(path) == "multi_agent"
    spans = list(iter_spans([path], Problems()))
    views = [normalize(s) for s in spans[1:]]
    assert [v.agent_name for v in views] == [
        "Excel_Expert", "Computer_terminal", "BusinessLogic_Expert", "DataVerification_Expert", "DataVerification_Expert",
    ]
    assert all(v.category == "llm" for v in views)
    assert {s["attributes"][conventions.TEST_OUTCOME] for s in spans} == {"passed"}
    assert spans[0]["attributes"]["multi_agent.system_prompt.Excel_Expert"].startswith("## Your role")


def test_same_file_name_in_two_folders_is_two_runs(tmp_path: Path) -> None:
    """Trace ids came from the base name: Algorithm-Generated/1.json and Hand-Crafted/1.json were one run."""
    a = write(tmp_path / "Algorithm-Generated" / "1.json", autogen(False))
    b = write(tmp_path / "Hand-Crafted" / "1.json", magentic_one(False))
    c = write(tmp_path / "copy" / "1.json", autogen(False))  # the same data again is the same run
    ids = {p.parent.name: {s["trace_id"] for s in iter_spans([p], Problems())} for p in (a, b, c)}
    assert len(ids["Algorithm-Generated"]) == len(ids["Hand-Crafted"]) == 1
    assert ids["Algorithm-Generated"] != ids["Hand-Crafted"]
    assert ids["copy"] == ids["Algorithm-Generated"]
    # the same for the transcript converters that had the bug
    t1 = write(tmp_path / "x" / "run.json", [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a"}])
    t2 = write(tmp_path / "y" / "run.json", [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "b"}])
    assert {s["trace_id"] for s in iter_spans([t1], Problems())} != {s["trace_id"] for s in iter_spans([t2], Problems())}


def test_failures_in_multi_agent_logs_reach_the_analysis(tmp_path: Path) -> None:
    paths = [write(tmp_path / "Hand-Crafted" / f"{i}.json", magentic_one(i % 2 == 0, pages=i + 1)) for i in range(6)]
    f = analyze_paths(paths, config=AnalysisConfig(), tests=RunIndex(), problems=Problems())
    d = f.dataset
    assert (d.traces, d.tests, d.failing_tests, d.passing_tests) == (6, 6, 3, 3)  # was 1 empty "passed" run each
    assert d.spans == sum(1 + len(magentic_one(True, i + 1)["history"]) for i in range(6))
    store = TraceStore.open(paths, cache_dir=tmp_path / "cache")
    assert len(store.trace_ids) == 6
    assert sum(fi.spans for fi in store.files) == sum(1 + len(magentic_one(True, i + 1)["history"]) for i in range(6))


def test_unknown_shape_is_not_trace_data_once_per_file(tmp_path: Path) -> None:
    """JSON of a shape we don't know: one "not trace data" line per file, not one malformed_json per line."""
    rows = tmp_path / "metrics.jsonl"
    rows.write_text("".join(json.dumps({"step": i, "loss": 1 / (i + 1)}) + "\n" for i in range(5000)))
    doc = write(tmp_path / "config.json", {"model": "gpt-4o", "temperature": 0.2, "tags": ["a", "b"]})
    text = tmp_path / "notes.json"
    text.write_text("these are notes, not json\n" * 300)
    for p in (rows, doc, text):
        assert detect_format(p) == NOT_TRACE_DATA
    stats = IngestStats()
    spans = list(iter_spans([rows, doc, text], stats.problems, stats=stats))
    assert spans == []
    assert stats.problems.skipped == {NOT_TRACE_DATA: 3}
    assert any("not trace data" in e for e in stats.problems.examples)


def test_utf8_bom_keeps_the_first_span(tmp_path: Path) -> None:
    """A BOM at the start of a file lost its first span (counted as malformed JSON) on every path."""
    from engine.traces.span import make_span

    spans = [make_span(trace_id=f"{1:032x}", span_id=f"{i + 1:016x}", name=f"s{i}", start_ns=10**18 + i,
                       end_ns=10**18 + i + 5, attributes={"openinference.span.kind": "TOOL", "tool.name": "pay",
                                                          "output.value": "Error: card declined"})
             for i in range(3)]
    bom = b"\xef\xbb\xbf"
    canonical = tmp_path / "bom.jsonl"
    canonical.write_bytes(bom + b"".join(json.dumps(s).encode() + b"\n" for s in spans))
    chat = tmp_path / "chat.json"
    chat.write_bytes(bom + json.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]).encode())
    sdk = tmp_path / "sdk.json"
    sdk.write_bytes(bom + json.dumps({"name": "s", "context": {"trace_id": "0x" + "1" * 32, "span_id": "0x" + "2" * 16},
                                      "start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-01T00:00:01Z"}).encode())
    multi = tmp_path / "w" / "1.json"
    multi.parent.mkdir()
    multi.write_bytes(bom + json.dumps(autogen(True)).encode())
    for path, n in ((canonical, 3), (chat, 2), (sdk, 1), (multi, 6)):
        problems = Problems()
        assert len(list(iter_spans([path], problems))) == n, path
        assert problems.skipped_total == 0, problems.examples
    problems = Problems()
    f = analyze_paths([canonical], config=AnalysisConfig(), tests=RunIndex(), problems=problems)
    assert problems.skipped_total == 0
    assert [m.run_count for m in f.failure_modes if m.detector == "tool_error"] == []  # one trace: a one-off
    store = TraceStore.open([canonical], cache_dir=tmp_path / "cache")
    assert sum(fi.spans for fi in store.files) == 3 and sum(fi.skipped for fi in store.files) == 0


CRASH = (
    "I clicked the browser back button.\n<Image>\nError processing publish message\n"
    "Traceback (most recent call last):\n"
    '  File "/usr/local/lib/python3.11/site-packages/autogen_magentic_one/agents/orchestrator.py", line 216, '
    "in update_ledger\n    ledger_response = await self._model_client.create(\n"
    '  File "/usr/local/lib/python3.11/site-packages/openai/_base_client.py", line 1638, in _request\n'
    "    raise self._make_status_error_from_response(err.response) from None\n"
    "openai.BadRequestError: Error code: 400 - {'error': {'code': 'content_filter', 'message': \"The response was "
    "filtered due to the prompt triggering Azure OpenAI's content management policy.\", 'param': 'prompt'}}\n"
    "FINAL ANSWER: Alliance Jiu Jitsu, NY Jidokwan Taekwondo\nSCENARIO.PY COMPLETE !#!#\nRUN.SH COMPLETE !#!#"
)


def test_a_crash_logged_in_a_message_is_an_error_the_analysis_sees(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        doc = magentic_one(False, pages=i + 1)
        doc["history"].append({"content": CRASH, "role": "WebSurfer"})
        paths.append(write(tmp_path / "Hand-Crafted" / f"{i + 1}.json", doc))
    spans = list(iter_spans(paths[:1], Problems()))
    failed = [s for s in spans if s["status"]["code"] == "STATUS_CODE_ERROR"]
    assert len(failed) == 1 and failed[0]["attributes"]["exception.type"] == "openai.BadRequestError"
    assert failed[0]["status"]["message"].startswith("openai.BadRequestError: Error code: 400")
    f = analyze_paths(paths, config=AnalysisConfig(), tests=RunIndex(), problems=Problems())
    modes = [(m.detector, m.title, m.run_count) for m in f.failure_modes]
    assert modes == [("llm_api_error", "LLM API failure: content filter", 3)], modes
