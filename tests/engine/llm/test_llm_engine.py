"""The agent loop against the scripted server: delegation, tool errors, turn/token/dollar caps, compaction, cache."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import pytest
from scripted_server import (
    calls,
    depth_of,
    http_error,
    last_message,
    role_of,
    text,
    tool_names,
    tool_results,
    turn_of,
)

from engine.llm.engine import run_engine

FINISH = ("final_answer", {"answer": "done", "failure_modes": []})


def run(settings, store, **kw):
    events = []
    result = asyncio.run(run_engine(settings, store, None, on_event=events.append, **kw))
    return result, events


def _alive_max(events, depth):
    alive = best = 0
    for e in events:
        if e.depth != depth:
            continue
        if e.kind == "agent_start":
            alive += 1
            best = max(best, alive)
        elif e.kind == "agent_end":
            alive -= 1
    return best


# ------------------------------------------------------------------ delegation


def test_two_level_delegation_parallel_and_per_depth_limit(scripted, make_settings, tau_store):
    seen_tools: dict[int, set[str]] = {}
    lock, at_depth_2, two_in_flight = threading.Lock(), [], threading.Event()

    def script(req, n):
        role, turn = role_of(req), turn_of(req)
        if role == "root":
            seen_tools[0] = set(tool_names(req))
            if turn == 0:
                return calls(*[("call_subagent", {"input": f"question {i}"}) for i in range(3)])
            answers = [json.loads(r) for r in tool_results(req, "call_subagent")]
            assert all("answer" in a for a in answers), answers
            return calls(("final_answer", {"answer": " | ".join(a["answer"] for a in answers)}))
        d = depth_of(req)
        seen_tools[d] = set(tool_names(req))
        if d == 1 and turn == 0:
            return calls(("call_subagent", {"input": "deeper question"}))
        if d == 2:  # the first two depth-2 agents answer only once both are running (none if they never overlap)
            with lock:
                at_depth_2.append(n)
                if len(at_depth_2) == 2:
                    two_in_flight.set()
            two_in_flight.wait(5)
        time.sleep(0.15)  # keep agents alive long enough to overlap
        return text(f"answer from depth {d}")

    srv = scripted(script)
    result, events = run(make_settings(srv, max_depth=2, max_parallel=2), tau_store)
    assert result.totals.stopped_because == "finished", result.notes
    assert result.answer.count("answer from depth 1") == 3
    assert "call_subagent" in seen_tools[0] and "call_subagent" in seen_tools[1]
    assert "call_subagent" not in seen_tools[2]  # offered only while depth < max depth
    assert "final_answer" in seen_tools[0] and "final_answer" not in seen_tools[1] | seen_tools[2]
    assert _alive_max(events, 1) == 2  # three asked for, two at a time (the per-depth semaphore)
    assert _alive_max(events, 2) == 2
    ids = sorted({e.agent_id for e in events if e.kind == "agent_start"})
    assert ids == ["root", "root.1", "root.1.1", "root.2", "root.2.1", "root.3", "root.3.1"]


def test_max_depth_zero_offers_no_delegation(scripted, make_settings, tau_store):
    srv = scripted(lambda req, n: calls(FINISH))
    run(make_settings(srv, max_depth=0), tau_store)
    assert "call_subagent" not in tool_names(srv.requests[0])


def test_a_failing_child_is_a_result_not_a_crash(scripted, make_settings, tau_store):
    def script(req, n):
        if role_of(req) == "sub":
            return http_error(400, "context length exceeded")
        if turn_of(req) == 0:
            return calls(("call_subagent", {"input": "look"}))
        got = json.loads(tool_results(req, "call_subagent")[0])
        return calls(("final_answer", {"answer": f"child said: {got['error']}"}))

    srv = scripted(script)
    result, _ = run(make_settings(srv), tau_store)
    assert result.totals.stopped_because == "finished"
    assert "subagent failed" in result.answer and "400" in result.answer


# ------------------------------------------------------------------ bad tool calls


def test_malformed_and_invalid_tool_calls_go_back_as_errors(scripted, make_settings, tau_store):
    def script(req, n):
        turn = turn_of(req)
        if turn == 0:
            return calls(("get_dataset_overview", "{not json"), ("view_trace", {}), ("no_such_tool", {}),
                         ("view_trace", {"trace_id": "ffffffffffffffffffffffffffffffff"}),
                         ("search_trace", {"trace_id": tau_store.trace_ids[0], "regex_pattern": "(unclosed"}))
        return calls(FINISH)

    srv = scripted(script)
    result, _ = run(make_settings(srv), tau_store)
    assert result.totals.stopped_because == "finished"
    errs = tool_results(srv.requests[1])
    assert errs[0].startswith("error: arguments for get_dataset_overview are not valid JSON")
    assert "invalid arguments for view_trace: trace_id: Field required" in errs[1]
    assert "unknown or unavailable tool 'no_such_tool'" in errs[2] and "get_dataset_overview" in errs[2]
    assert errs[3].startswith("error: unknown id") and "never guess an id" in errs[3]
    assert errs[4].startswith("error:") and len(errs[4]) < 400


def test_every_tool_result_respects_the_byte_budget(scripted, make_settings, tau_store):
    big = max(tau_store.trace_ids, key=lambda t: tau_store.summary(t).raw_jsonl_bytes)

    def script(req, n):
        if turn_of(req) == 0:
            return calls(("view_trace", {"trace_id": big}), ("query_traces", {"limit": 500}),
                         ("get_dataset_overview", {}))
        return calls(FINISH)

    srv = scripted(script)
    run(make_settings(srv, tool_result_bytes=4096), tau_store)
    results = tool_results(srv.requests[1])
    assert len(results) == 3 and all(len(r.encode()) <= 4096 for r in results)
    assert "oversized" in results[0] or "truncated" in results[0]


# ------------------------------------------------------------------ turn caps


def test_turn_cap_forces_a_finish_and_retries_do_not_count(scripted, make_settings, tau_store):
    def script(req, n):
        if n == 1:
            return http_error(502, "bad gateway")  # a retry: not a turn
        return calls(("count_traces", {}))  # never finishes on its own

    srv = scripted(script)
    result, events = run(make_settings(srv, max_turns=3), tau_store)
    assert len(srv.requests) == 4  # three turns + one retried request
    forced = srv.requests[-1]
    assert [t["function"]["name"] for t in forced["tools"]] == ["final_answer"]
    assert forced["tool_choice"] == {"type": "function", "function": {"name": "final_answer"}}
    assert "You must finish now (max turns)" in last_message(forced)["content"]
    assert result.totals.stopped_because == "max_turns"
    assert sum(1 for e in events if e.kind == "forced_finish") == 1


def test_subagent_turn_cap_ends_in_plain_text(scripted, make_settings, tau_store):
    def script(req, n):
        if role_of(req) == "sub":
            if req.get("tool_choice") == "none":
                return text("what I found so far")
            return calls(("count_traces", {}))
        if turn_of(req) == 0:
            return calls(("call_subagent", {"input": "count"}))
        return calls(("final_answer", {"answer": tool_results(req, "call_subagent")[0]}))

    srv = scripted(script)
    result, _ = run(make_settings(srv, max_turns=4), tau_store)
    subs = srv.by_role("sub")
    assert len(subs) == 4 and subs[-1]["tool_choice"] == "none" and "tool_choice" not in subs[-2]
    assert "You must finish now (max turns)" in last_message(subs[-1])["content"]
    child = json.loads(result.answer)
    assert child == {"child_agent_id": "root.1", "answer": "what I found so far", "turns_used": 4,
                     "stopped_because": "max_turns"}


# ------------------------------------------------------------------ run budgets


def test_token_budget_warns_at_80_and_forces_at_100(scripted, make_settings, tau_store):
    def script(req, n):
        if "final_answer" in tool_names(req) and len(tool_names(req)) == 1:
            return calls(FINISH, tokens_in=300, tokens_out=0)
        return calls(("count_traces", {}), tokens_in=300, tokens_out=0)

    srv = scripted(script)
    result, events = run(make_settings(srv, max_tokens=1000), tau_store)
    contents = [m.get("content") or "" for m in srv.requests[-1]["messages"]]
    assert sum("Budget notice" in c for c in contents) == 1  # told once, never re-armed
    warned_at = next(i for i, r in enumerate(srv.requests) if "Budget notice" in (last_message(r).get("content") or ""))
    assert warned_at == 3  # after 900 of 1000 tokens
    assert len(srv.requests) == 5  # 4 × 300 = 1200 ≥ 1000: the fifth request is the forced finish
    assert [t["function"]["name"] for t in srv.requests[-1]["tools"]] == ["final_answer"]
    assert result.totals.stopped_because == "max_tokens" and result.totals.tokens_in == 1500


def test_dollar_budget_forces_the_finish(scripted, make_settings, tau_store):
    # gpt-4o-mini: $0.15 / $0.60 per 1M tokens → 2000 in + 500 out = $0.0006 per request
    def script(req, n):
        if len(tool_names(req)) == 1:
            return calls(FINISH, tokens_in=2000, tokens_out=500)
        return calls(("count_traces", {}), tokens_in=2000, tokens_out=500)

    srv = scripted(script)
    result, _ = run(make_settings(srv, max_cost_usd=0.001), tau_store)
    assert len(srv.requests) == 3  # $0.0012 after two: the third is forced
    assert result.totals.stopped_because == "max_cost"
    assert result.totals.cost_usd == pytest.approx(0.0018)


def test_unknown_price_counts_tokens_only(scripted, make_settings, tau_store):
    srv = scripted(lambda req, n: calls(FINISH))
    result, events = run(make_settings(srv, model="local-llama-x", max_cost_usd=1.0), tau_store)
    assert result.totals.cost_usd is None and result.totals.tokens_in == 100
    assert any("cannot be enforced" in n for n in result.notes)


def test_subagents_stop_when_the_budget_is_spent(scripted, make_settings, tau_store):
    def script(req, n):
        if role_of(req) == "sub":
            return calls(("count_traces", {}), tokens_in=600, tokens_out=0)
        if len(tool_names(req)) == 1:
            return calls(FINISH)
        return calls(("call_subagent", {"input": "go"}), tokens_in=100, tokens_out=0)

    srv = scripted(script)
    result, _ = run(make_settings(srv, max_tokens=1000), tau_store)
    assert len(srv.by_role("sub")) == 2  # 100 + 600 + 600 ≥ 1000: the child stops, the root finishes
    assert result.totals.stopped_because == "max_tokens"


# ------------------------------------------------------------------ compaction


def _compaction_script(ids, seen_items):
    def script(req, n):
        role = role_of(req)
        if role == "compaction":
            return text("summary: trace rendered, nothing unusual", tokens_in=50, tokens_out=10)
        turn = turn_of(req)
        if turn < len(ids):
            # once something was compacted, fetch it back once
            for m in req["messages"]:
                c = m.get("content") or ""
                found = re.search(r"\[compacted tool result (ctx-\d+)\]", c) if m.get("role") == "tool" else None
                if found and not seen_items:
                    seen_items.append(found.group(1))
                    return calls(("get_context_item", {"item_id": found.group(1)}))
            return calls(("render_trace", {"trace_id": ids[turn]}))
        return calls(FINISH)

    return script


def test_compaction_keeps_requests_bounded_and_originals_reachable(scripted, make_settings, tau_store):
    ids = tau_store.trace_ids[:18]
    seen_items: list[str] = []
    srv = scripted(_compaction_script(ids, seen_items))
    result, events = run(make_settings(srv, max_turns=30, context_tokens=12_000, tool_result_bytes=4096), tau_store)
    assert result.totals.stopped_because == "finished"
    compactions = [e for e in events if e.kind == "compaction"]
    assert compactions and srv.by_role("compaction")
    root_sizes = [s for r, s in zip(srv.requests, srv.sizes, strict=True) if role_of(r) == "root"]
    threshold_bytes = 12_000 * 0.6 * 4
    assert max(root_sizes) < threshold_bytes + 2 * 4096 + 2048  # bounded: one turn's growth over the threshold
    assert sum(len(tool_results(r)) for r in srv.by_role("root")[-1:]) >= len(ids)
    # get_context_item returned the original render, not the summary
    got = next(tool_results(r, "get_context_item") for r in srv.by_role("root") if tool_results(r, "get_context_item"))
    assert seen_items and got[0].startswith('{"trace_id"') and "compacted" not in got[0][:50]


def test_compaction_without_a_model_uses_excerpts(scripted, make_settings, tau_store):
    ids = tau_store.trace_ids[:14]
    srv = scripted(_compaction_script(ids, ["skip"]))
    result, events = run(make_settings(srv, max_turns=30, context_tokens=12_000, tool_result_bytes=4096,
                                       compaction_model="none"), tau_store)
    assert any(e.kind == "compaction" for e in events)
    assert not srv.by_role("compaction")
    last = srv.by_role("root")[-1]
    compacted = [c for c in tool_results(last) if c.startswith("[compacted tool result")]
    assert compacted and all("ids:" in c or "…" in c for c in compacted)


# ------------------------------------------------------------------ cache and replay


def _tiny_script(req, n):
    role, turn = role_of(req), turn_of(req)
    if role == "sub":
        return text("sub answer") if turn else calls(("count_traces", {"filters": {"has_errors": True}}))
    if turn == 0:
        return calls(("get_dataset_overview", {}), ("call_subagent", {"input": "a"}), ("call_subagent", {"input": "b"}))
    return calls(FINISH)


def test_cached_rerun_makes_zero_requests(scripted, make_settings, tau_store):
    srv = scripted(_tiny_script)
    settings = make_settings(srv)
    first, _ = run(settings, tau_store)
    n = len(srv.requests)
    second, _ = run(settings, tau_store)
    assert len(srv.requests) == n  # nothing new reached the server
    assert second.totals.requests == 0 and second.totals.cached == n and second.totals.cost_usd == 0
    assert second.answer == first.answer and first.totals.requests == n


def test_replay_without_a_provider(scripted, make_settings, tau_store, tmp_path):
    srv = scripted(_tiny_script)
    log = tmp_path / "session.jsonl"
    first, _ = run(make_settings(srv, replay=log, cache=False), tau_store)
    again, _ = run(make_settings(None, replay=log, cache=False), tau_store)  # no server listening
    assert again.answer == first.answer and again.totals.requests == 0 and not again.failed


def test_a_corrupt_replay_fails_the_run_with_one_line(scripted, make_settings, tau_store, tmp_path):
    srv = scripted(_tiny_script)
    log = tmp_path / "session.jsonl"
    run(make_settings(srv, replay=log, cache=False), tau_store)
    log.write_text(log.read_text().replace('"choices"', '"chosen"'))
    result, events = run(make_settings(None, replay=log, cache=False), tau_store)
    assert result.failed and result.totals.stopped_because == "error: response has no choices"
    assert result.notes == ["LLM engine failed: response has no choices"]
    assert events[-1].kind == "run_end"


def test_a_run_that_cannot_start_is_a_failed_result(make_settings, tau_store, tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result, events = run(make_settings(None, replay=not_a_folder / "session.jsonl"), tau_store)
    assert result.failed and result.totals.stopped_because.startswith("error: FileExistsError")
    assert result.notes[0].startswith("LLM engine failed: FileExistsError") and result.totals.requests == 0
    assert [e.kind for e in events] == ["run_end"]


def test_provider_down_fails_with_one_line(make_settings, tau_store, tmp_path):
    result, _ = run(make_settings(None, max_retries=1), tau_store, out_dir=tmp_path)
    assert result.failed and result.totals.stopped_because.startswith("error: cannot reach the provider")
    assert result.modes == [] and (tmp_path / "engine-traces.jsonl").is_file()


def test_refusal_is_retried_without_costing_a_turn(scripted, make_settings, tau_store):
    def script(req, n):
        if n == 0:
            body = text("")
            body["choices"][0]["message"]["refusal"] = "I can't help with that."
            return body
        return calls(FINISH)

    srv = scripted(script)
    result, _ = run(make_settings(srv, refusal_retries=1, max_turns=1), tau_store)
    assert len(srv.requests) == 2 and result.totals.stopped_because == "max_turns"
    assert result.answer == "done"


def test_wall_clock_budget_forces_the_finish(scripted, make_settings, tau_store):
    def script(req, n):
        time.sleep(0.625)  # over 0.4 of the budget: at most 3 turns, and a third comes after the 80% wrap-up
        if len(tool_names(req)) == 1:
            return calls(FINISH)
        return calls(("count_traces", {}))

    srv = scripted(script)
    # 1.5 s leaves the run's set-up (~0.1-0.25 s on a loaded machine) far from forcing the very first request
    result, events = run(make_settings(srv, timeout_s=1.5, max_turns=50), tau_store)
    assert result.totals.stopped_because == "timeout" and result.answer == "done"
    assert 2 <= len(srv.requests) <= 5 and [t["function"]["name"] for t in srv.requests[-1]["tools"]] == ["final_answer"]
    assert any(e.kind == "wrap_up" for e in events) or len(srv.requests) <= 3


def test_token_estimate_learns_from_the_providers_counts(scripted, make_settings, tau_store):
    """A provider that counts 1 token per 2 bytes makes compaction start earlier than bytes/4 would."""
    ids = tau_store.trace_ids[:10]

    def script(req, n):
        size = len(json.dumps(req["messages"])) + len(json.dumps(req.get("tools") or []))
        if role_of(req) == "compaction":
            return text("short summary", tokens_in=size // 2)
        turn = turn_of(req)
        return calls(("render_trace", {"trace_id": ids[turn]}) if turn < len(ids) else FINISH, tokens_in=size // 2)

    srv = scripted(script)
    _, dense = run(make_settings(srv, max_turns=30, context_tokens=30_000, tool_result_bytes=4096,
                                 compaction_model="none"), tau_store)
    # ~56 KB at most: bytes/4 alone (14k tokens) would never reach the 18k threshold in this run
    assert max(srv.sizes) < 18_000 * 4 and any(e.kind == "compaction" for e in dense)


def test_without_a_store_tools_error_and_modes_are_rejected(scripted, make_settings):
    def script(req, n):
        if turn_of(req) == 0:
            return calls(("count_traces", {}))
        return calls(("final_answer", {"answer": "guess", "failure_modes": [
            {"title": "t", "evidence": [{"trace_id": "a" * 32}]}]}))

    srv = scripted(script)
    result, _ = run(make_settings(srv), None)
    assert tool_results(srv.requests[1])[0] == "error: the trace store is unavailable in this run"
    assert result.modes == [] and result.rejected[0].reason == "trace store unavailable"
    assert result.answer == "guess"


def test_engine_trace_keeps_no_secret_a_tool_call_carried(scripted, make_settings, tau_store, tmp_path):
    secret = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4"

    def script(req, n):
        if turn_of(req) == 0:
            return calls(("get_context_item", {"item_id": secret}))
        assert secret in tool_results(req, "get_context_item")[0]  # the model itself sees its own text
        return calls(FINISH)

    result, _ = run(make_settings(scripted(script)), tau_store, out_dir=tmp_path)
    written = result.engine_trace.read_text()
    assert "get_context_item" in written and "[REDACTED]" in written and secret not in written


def test_a_forced_finish_offers_no_correction_round(scripted, make_settings, tau_store):
    bad = {"title": "made up", "evidence": [{"trace_id": "0" * 32}]}

    def script(req, n):
        if turn_of(req) == 0:
            return calls(("count_traces", {}))
        return calls(("final_answer", {"answer": "forced", "failure_modes": [bad]}))

    srv = scripted(script)
    result, events = run(make_settings(srv, max_turns=2), tau_store)
    assert len(srv.requests) == 2 and result.totals.stopped_because == "max_turns" and result.answer == "forced"
    assert [r.round for r in result.rejected] == [1] and "unknown trace id" in result.rejected[0].reason
    assert not any(e.kind == "correction" for e in events)
