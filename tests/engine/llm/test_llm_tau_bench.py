"""Acceptance: a scripted multi-agent run over the real tau-bench corpus ends in grounded, signature-backed modes.

The script plays a model that reads what the tools really returned (trace ids from the
overview's error taxonomy, span ids from subagents' searches) — nothing in the final answer
is hard-coded except one hallucinated id and one regex that matches nothing, both of which
the engine must reject after exactly one correction round.
"""

from __future__ import annotations

import asyncio
import json
import re

from scripted_server import calls, first_user, role_of, text, tool_results, turn_of

from engine.findings import Findings
from engine.llm.engine import run_engine
from engine.signatures import signature_id

PAYMENT = "payment amount does not add up"
FAKE_TRACE = "0123456789abcdef0123456789abcdef"


def _json(s: str) -> dict:
    return json.loads(s)


def tau_script(req, n):
    role = role_of(req)
    turn = turn_of(req)
    if role == "sub":
        question = first_user(req)
        tid = re.search(r"\b[0-9a-f]{32}\b", question).group(0)
        if turn == 0:
            return calls(("search_trace", {"trace_id": tid, "regex_pattern": PAYMENT, "max_matches": 3}))
        found = _json(tool_results(req, "search_trace")[-1])
        span = found["matches"][0]["span_id"]
        return text(f"In trace {tid}, span {span} (book_reservation) fails with '{PAYMENT}'.")
    if role == "synthesis":
        return text("The traces fail when the paid amount differs from the total price.")
    assert role == "root", role
    if turn == 0:
        return calls(("get_dataset_overview", {}), ("get_failure_modes", {"limit": 5}))
    if turn == 1:
        overview = _json(tool_results(req, "get_dataset_overview")[0])
        group = next(g for g in overview["error_taxonomy"] if PAYMENT in g["status_message"])
        ids = group["example_trace_ids"][:2]
        return calls(*[("call_subagent", {"input": f"Why does book_reservation fail in trace {t}?"}) for t in ids],
                     ("synthesize_traces", {"trace_ids": ids, "focus": "payment"}))
    answers = [_json(r) for r in tool_results(req, "call_subagent")]
    cited = []
    for a in answers:
        tid, span = re.search(r"trace ([0-9a-f]{32}), span ([0-9a-f]{16})", a["answer"]).groups()
        cited.append({"trace_id": tid, "span_id": span})
    good = {
        "title": "book_reservation payment does not add up", "category": "tool_error",
        "description": "The agent books with a payment that differs from the total price.",
        "evidence": cited,
        "signature": {"tool_name": "book_reservation", "field": "error", "regex": PAYMENT},
        "suggested_fix": "Compute the total with `calculate` before booking.", "confidence": 0.8,
    }
    hallucinated = {"title": "Flights unavailable on the chosen date", "category": "tool_error",
                    "evidence": [{"trace_id": FAKE_TRACE}],
                    "signature": {"tool_name": "update_reservation_flights", "regex": "not available on date"}}
    nothing = {"title": "Agent apologises about refunds", "category": "llm",
               "evidence": cited[:1], "signature": {"regex": "zebra refund xylophone"}}
    if turn == 2:
        return calls(("final_answer", {"answer": "# Findings\nPayments that do not add up.",
                                       "failure_modes": [good, hallucinated, nothing]}))
    # the correction round: read the rejection, fix the hallucinated id with a real one, drop the other
    rejection = tool_results(req, "final_answer")[-1]
    assert "unknown trace id" in rejection and "matches nothing" in rejection
    search = _json(tool_results(req, "get_dataset_overview")[0])
    real = next(g for g in search["error_taxonomy"] if "not available on date" in g["status_message"])
    fixed = {**hallucinated, "evidence": [{"trace_id": real["example_trace_ids"][0]}]}
    return calls(("final_answer", {"answer": "# Findings\nPayments and unavailable flights.",
                                   "failure_modes": [fixed]}))


def test_scripted_multi_agent_run_over_tau_bench(scripted, make_settings, tau_store, tmp_path):
    srv = scripted(tau_script)
    settings = make_settings(srv, max_depth=2, max_parallel=2)
    events = []
    result = asyncio.run(run_engine(settings, tau_store, None, out_dir=tmp_path, on_event=events.append))

    assert not result.failed and result.totals.stopped_because == "finished"
    by_title = {m.title: m for m in result.modes}
    assert set(by_title) == {"book_reservation payment does not add up", "Flights unavailable on the chosen date"}
    pay = by_title["book_reservation payment does not add up"]
    assert pay.verified and pay.signature is not None and pay.id == signature_id(pay.signature)
    assert pay.trace_count >= 4 and all(e.span_id for e in pay.evidence[:2])
    assert all(e.trace_id in set(tau_store.trace_ids) for m in result.modes for e in m.evidence)
    reasons = {r.title: (r.round, r.reason) for r in result.rejected}
    assert reasons["Flights unavailable on the chosen date"][0] == 1
    assert "unknown trace id" in reasons["Flights unavailable on the chosen date"][1]
    assert reasons["Agent apologises about refunds"] == (1, "signature matches nothing in the traces")
    assert "unavailable flights" in result.answer
    # two subagents ran at depth 1, in parallel with a synthesis call, and the root made 4 turns
    assert len(srv.by_role("sub")) == 4 and len(srv.by_role("root")) == 4 and len(srv.by_role("synthesis")) == 1
    assert sum(1 for e in events if e.kind == "correction") == 1
    assert result.totals.requests == len(srv.requests)
    # the engine's own run is a trace halo can read
    from engine.traces.store import TraceStore

    own = TraceStore.open([result.engine_trace], cache_dir=tmp_path / "idx")
    ov = own.get_dataset_overview()
    assert ov.total_traces == 1 and "search_trace" in ov.tool_names and ov.categories.get("llm") == len(srv.requests)


def test_reasoner_through_the_orchestrator(scripted, make_settings, tau_path, tmp_path):
    """The same run through engine.run.run_analysis: modes merged into findings.json."""
    from engine.llm import make_reasoner
    from engine.run import run_analysis

    srv = scripted(tau_script)
    reasoner = make_reasoner(make_settings(srv, max_parallel=2))
    outcome = run_analysis([tau_path], tmp_path / "out", reasoners=[reasoner], fail_on="never")
    findings = Findings.read(tmp_path / "out" / "findings.json")
    llm_modes = [m for m in findings.failure_modes if m.source in ("llm", "both")]
    assert any(m.signature and m.signature.tool_name == "book_reservation" for m in llm_modes)
    res = outcome.reason_results[0]
    assert res.totals["stopped_because"] == "finished" and len(res.rejected) == 2
    assert (tmp_path / "out" / "engine-traces.jsonl").is_file()
