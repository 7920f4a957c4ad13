"""The scanner's fast paths must see what ``normalize`` sees: other dialects and real corpora.

Tool and plain-text LLM spans skip ``normalize`` in the hot loop; these tests run the same
detections on GenAI-dialect spans (which take the fallback paths) and on every real corpus,
comparing against expectations computed from ``normalize`` itself.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from engine.analysis.config import AnalysisConfig
from engine.analysis.detectors import tool_errors
from engine.analysis.pipeline import analyze_spans
from engine.analysis.templates import template_of
from engine.findings import mode_id
from engine.traces import ingest
from engine.traces.normalize import normalize
from engine.traces.problems import Problems
from engine.traces.span import STATUS_ERROR, STATUS_OK, make_span

T0 = 1_700_000_000_000_000_000


def genai_run(no: int) -> list[dict]:
    tid = f"{no + 100:032x}"
    spans = []

    def add(i: int, name: str, attrs: dict, error: str | None = None) -> None:
        spans.append(make_span(trace_id=tid, span_id=f"{no + 1:08x}{i:08x}", parent_span_id="" if i == 1 else f"{no + 1:08x}{1:08x}",
                               name=name, start_ns=T0 + no * 10**12 + i * 10**7, end_ns=T0 + no * 10**12 + i * 10**7 + 5 * 10**6,
                               status_code=STATUS_ERROR if error else STATUS_OK, status_message=error or "",
                               attributes=attrs))

    add(1, "invoke_agent helper", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper"})
    add(2, "chat gpt-4o", {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
        "gen_ai.tool.definitions": json.dumps([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "tool_call", "name": "teleport", "arguments": {"to": "mars"}}]}]),
    })
    add(3, "execute_tool lookup", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup",
                                   "gen_ai.tool.call.arguments": json.dumps({"id": no}),
                                   "gen_ai.tool.call.result": json.dumps({"error": f"record {no} is locked"})})
    add(4, "chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                           "gen_ai.response.finish_reasons": ["length"], "gen_ai.completion.0.content": "partial"})
    return spans


def test_genai_dialect_takes_the_fallback_paths() -> None:
    spans = [s for i in range(3) for s in genai_run(i)]
    f = analyze_spans(spans, config=AnalysisConfig())
    ids = {m.id for m in f.failure_modes}
    assert mode_id("tool_error", "lookup\x1f" + template_of("record 1 is locked")) in ids
    assert mode_id("hallucinated_tool", "teleport") in ids
    assert mode_id("truncated_output", "length") in ids


def _corpus_files(corpora: Path) -> list[Path]:
    files = []
    for sub in ("tau-bench-airline", "any-agent-otel", "swe-agent-traj"):
        d = corpora / sub
        if d.is_dir():
            files.extend(p for p in ingest.expand_paths([d]))
    return files


def test_tool_errors_match_normalize_on_real_corpora(corpora: Path) -> None:
    files = _corpus_files(corpora)
    if not files:
        pytest.skip("no corpora")
    spans = list(ingest.iter_spans(files, Problems()))
    expected: dict[str, set[str]] = defaultdict(set)  # mode id -> traces, via normalize()
    for s in spans:
        ns = normalize(s)
        if ns.category != "tool":
            continue
        msg = (ns.error_message or ns.error_type or "error") if ns.is_error else tool_errors.result_error(ns.tool_result)
        if msg and not tool_errors.is_unknown_tool_error(msg):
            expected[mode_id("tool_error", f"{ns.tool_name}\x1f{template_of(msg)}")].add(ns.trace_id)
    assert expected
    f = analyze_spans(spans, config=AnalysisConfig(min_runs=1, min_prevalence=0.0))
    got = {m.id: m.trace_count for m in f.failure_modes if m.detector == "tool_error"}
    assert got == {k: len(v) for k, v in expected.items()}
