"""tau-bench, SWE-agent and generic chat transcripts → canonical spans, checked against the real corpora."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import orjson

from engine.traces import conventions
from engine.traces.ingest import IngestStats, convert, detect_format, iter_spans
from engine.traces.normalize import normalize
from engine.traces.problems import Problems
from engine.traces.span import STATUS_ERROR, iso_to_ns


def _spans(paths, problems=None):
    problems = problems if problems is not None else Problems()
    return list(iter_spans([str(p) for p in paths], problems)), problems


# ---------------------------------------------------------------- tau-bench


def test_tau_bench_airline_counts(corpora: Path) -> None:
    path = corpora / "tau-bench-airline" / "gpt-4o-airline.json"
    assert detect_format(path) == "tau_bench"
    raw = json.loads(path.read_text())
    # Expected numbers derived from the raw file itself (one agent + one llm span per assistant
    # message + one tool span per tool call), then pinned: 200 runs, 2454 assistant messages,
    # 1164 tool calls of which 73 results start with "Error:".
    n_assistant = sum(1 for r in raw for m in r["traj"] if m["role"] == "assistant")
    n_calls = sum(len(m.get("tool_calls") or []) for r in raw for m in r["traj"])
    n_err = sum(
        1 for r in raw for m in r["traj"] if m["role"] == "tool" and str(m["content"]).startswith("Error:")
    )
    assert (len(raw), n_assistant, n_calls, n_err) == (200, 2454, 1164, 73)

    spans, problems = _spans([path])
    assert problems.skipped_total == 0 and not problems.repaired
    assert len(spans) == 200 + 2454 + 1164 == 3818
    assert len({s["trace_id"] for s in spans}) == 200
    cats = Counter(normalize(s).category for s in spans)
    assert cats == {"agent": 200, "llm": 2454, "tool": 1164}
    errors = [s for s in spans if s["status"]["code"] == STATUS_ERROR]
    assert len(errors) == 73
    assert all(normalize(s).category == "tool" and s["status"]["message"].startswith("Error:") for s in errors)

    roots = [s for s in spans if s["parent_span_id"] == ""]
    assert len(roots) == 200
    outcomes = Counter(r["attributes"][conventions.TEST_OUTCOME] for r in roots)
    assert outcomes == {"failed": 116, "passed": 84}  # rewards: 116 × 0.0, 84 × 1.0
    first = roots[0]["attributes"]
    assert first[conventions.TEST_NODEID] == f"tau-bench-airline::task_{raw[0]['task_id']}::trial_{raw[0]['trial']}"
    assert first[conventions.RUN_REWARD] == raw[0]["reward"]
    # every span of a run carries the run's nodeid and outcome (the analysis groups by them)
    by_trace = {r["trace_id"]: r["attributes"] for r in roots}
    for s in spans:
        a = s["attributes"]
        assert a[conventions.TEST_NODEID] == by_trace[s["trace_id"]][conventions.TEST_NODEID]
        assert a[conventions.TEST_OUTCOME] == by_trace[s["trace_id"]][conventions.TEST_OUTCOME]
        assert a[conventions.SOURCE_FORMAT] == "tau_bench" and a["halo.synthetic_time"] is True
        assert a[conventions.RUN_ID] == "gpt-4o-airline.json"


def test_tau_bench_llm_and_tool_views(corpora: Path) -> None:
    path = corpora / "tau-bench-airline" / "gpt-4o-airline.json"
    raw = json.loads(path.read_text())
    spans, _ = _spans([path])
    run0 = [s for s in spans if s["trace_id"] == spans[0]["trace_id"]]
    calls = [m["tool_calls"][0] for m in raw[0]["traj"] if m.get("tool_calls")]
    tools = [normalize(s) for s in run0 if normalize(s).category == "tool"]
    assert [t.tool_name for t in tools] == [c["function"]["name"] for c in calls]
    assert tools[0].tool_arguments == calls[0]["function"]["arguments"]
    results = [m["content"] for m in raw[0]["traj"] if m["role"] == "tool"]
    assert [t.tool_result for t in tools] == results
    llms = [normalize(s) for s in run0 if normalize(s).category == "llm"]
    requested = [c.name for n in llms for c in n.tool_calls_requested]
    assert requested == [c["function"]["name"] for c in calls]
    # children start after their parent and spans of a run are time-ordered
    starts = [iso_to_ns(s["start_time"]) for s in run0]
    assert starts == sorted(starts)


def test_tau_bench_reconvert_is_identical(corpora: Path, tmp_path: Path) -> None:
    path = corpora / "tau-bench-airline" / "gpt-4o-airline.json"
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    convert([path], a)
    convert([path], b)
    assert a.read_bytes() == b.read_bytes()


# ---------------------------------------------------------------- SWE-agent


def test_swe_agent_files(corpora: Path) -> None:
    d = corpora / "swe-agent-traj"
    expect = {
        # file: (spans, llm turns, outcome, exit_status). Turns = len(trajectory) for the two files with
        # trajectory[] (12 and 5 steps); the history-only file has 5 assistant messages with tool_calls.
        "function_calling_simple.traj": (11, 5, None, None),
        "pydicom-1458.traj": (25, 12, "passed", "submitted"),
        "sweagenttestrepo-1c2844.traj": (11, 5, "passed", "submitted"),
    }
    for name, (n_spans, n_llm, outcome, exit_status) in expect.items():
        path = d / name
        assert detect_format(path) == "swe_agent"
        raw = json.loads(path.read_text())
        steps = raw.get("trajectory") or [m for m in raw["history"] if m.get("tool_calls")]
        assert len(steps) == n_llm
        spans, problems = _spans([path])
        assert problems.skipped_total == 0
        assert len(spans) == n_spans == 1 + 2 * n_llm
        root = spans[0]["attributes"]
        assert root[conventions.TEST_NODEID] == f"swe-agent::{name.removesuffix('.traj')}"
        assert root.get(conventions.TEST_OUTCOME) == outcome
        assert root.get(conventions.RUN_EXIT_STATUS) == exit_status
        tools = [normalize(s) for s in spans if normalize(s).category == "tool"]
        if raw.get("trajectory"):
            assert [t.tool_name for t in tools] == [s["action"].split()[0] for s in raw["trajectory"]]
            assert [t.tool_result for t in tools] == [s["observation"] for s in raw["trajectory"]]
        assert tools[-1].tool_name == "submit"


# ---------------------------------------------------------------- generic transcripts


def test_openai_messages_shapes(tmp_path: Path) -> None:
    msgs = [
        {"role": "system", "content": "be useful"},
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                {"id": "c2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c2", "content": "12:00"},
        {"role": "tool", "tool_call_id": "c1", "content": "Error: service down"},
        {"role": "assistant", "content": "Sorry, the weather service is down."},
    ]
    plain = tmp_path / "plain.json"
    plain.write_bytes(orjson.dumps(msgs))
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_bytes(orjson.dumps([{"id": "r1", "messages": msgs, "reward": 0}, {"messages": msgs, "success": True}]))
    assert detect_format(plain) == detect_format(wrapped) == "openai_messages"
    spans, problems = _spans([plain])
    assert problems.skipped_total == 0
    views = [normalize(s) for s in spans]
    assert [v.category for v in views] == ["agent", "llm", "tool", "tool", "llm"]
    weather, clock = views[2], views[3]
    assert (weather.tool_name, weather.tool_result, weather.is_error) == ("get_weather", "Error: service down", True)
    assert (clock.tool_name, clock.tool_result, clock.is_error) == ("get_time", "12:00", False)
    assert views[0].test_nodeid == "plain" and views[0].test_outcome is None
    spans2, _ = _spans([wrapped])
    roots = [s["attributes"] for s in spans2 if not s["parent_span_id"]]
    assert [(r[conventions.TEST_NODEID], r[conventions.TEST_OUTCOME]) for r in roots] == [("wrapped::r1", "failed"), ("wrapped::1", "passed")]


def test_transcript_bad_input_is_counted(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.traj"
    bad_json.write_text('{"trajectory": [')
    weird = tmp_path / "weird_tau.json"
    weird.write_bytes(orjson.dumps([{"task_id": 1, "reward": 1, "traj": [{"role": "assistant", "content": "hi"}, 7]}, 5,
                                     {"task_id": 2, "reward": 0}]))
    stats = IngestStats()
    spans = list(iter_spans([bad_json, weird], stats.problems, formats={str(bad_json): "swe_agent"}, stats=stats))
    assert [f.format for f in stats.files] == ["swe_agent", "tau_bench"]
    assert stats.problems.skipped == {"malformed_json": 1, "message_not_an_object": 1, "not_an_object": 1,
                                      "missing_trajectory": 1}
    assert len(spans) == 2  # task 1: root + one llm span
    assert any(e.startswith(f"{weird}:[1]") for e in stats.problems.examples)


def test_gzip_copy_gives_identical_spans(corpora: Path, tmp_path: Path) -> None:
    import gzip

    src = corpora / "swe-agent-traj" / "pydicom-1458.traj"
    gz = tmp_path / "pydicom-1458.traj.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    assert detect_format(gz) == "swe_agent"
    assert _spans([gz])[0] == _spans([src])[0]
