"""Each detector on real canonical spans (OpenInference dialect): fires on the pattern, stays quiet without it."""

from __future__ import annotations

import json

from spanbuilder import Run, flatten

from engine.analysis.config import AnalysisConfig
from engine.analysis.pipeline import analyze_spans
from engine.findings import Findings, mode_id

SCHEMA = {
    "type": "object",
    "properties": {"user_id": {"type": "string"}, "amount": {"type": "integer"}},
    "required": ["user_id"],
    "additionalProperties": False,
}


def analyze(runs: list[Run], **cfg) -> Findings:
    return analyze_spans(flatten(runs), config=AnalysisConfig(**cfg))


def by_detector(f: Findings, detector: str) -> list:
    return [m for m in f.failure_modes if m.detector == detector]


def runs_with(n: int, build, start: int = 0, outcome: str | None = None) -> list[Run]:
    out = []
    for i in range(start, start + n):
        r = Run(i, nodeid=f"t::{i}" if outcome else None, outcome=outcome)
        build(r, i)
        out.append(r)
    return out


def clean(r: Run, i: int) -> None:
    r.llm(calls=[("get_user", '{"user_id": "u1"}')])
    r.tool("get_user", '{"user_id": "u1"}', '{"name": "Ann"}')
    r.llm(text="Here is your booking.")


# ---------------------------------------------------------------- tool errors


def test_tool_errors_grouped_by_tool_and_template() -> None:
    def build(r: Run, i: int) -> None:
        r.tool("book", json.dumps({"x": i}), f"Error: flight HAT{i:03d} not available on date 2024-05-{i + 10}")
        r.tool("pay", "{}", "fine")
        r.tool("pay", "{}", '{"error": {"message": "card 4242 declined"}}')
        r.tool("ship", "{}", "ok", error=f"TimeoutError: took {i + 30}s")

    f = analyze(runs_with(3, build) + runs_with(3, clean, 3))
    titles = sorted(m.title for m in by_detector(f, "tool_error"))
    assert titles == [
        "Tool `book` fails: Error: flight <*> not available on date <*>",
        "Tool `pay` fails: card <*> declined",
        "Tool `ship` fails: TimeoutError: took <*>",
    ]
    book = next(m for m in by_detector(f, "tool_error") if "book" in m.title)
    assert book.trace_count == 3 and book.run_count == 3 and book.prevalence == 0.5
    assert book.id == mode_id("tool_error", "book\x1fError: flight <*> not available on date <*>")
    assert {e.trace_id for e in book.evidence} == {f"{i + 1:032x}" for i in range(3)}
    assert book.example and "HAT000" in book.example


def test_success_results_are_not_errors() -> None:
    def build(r: Run, i: int) -> None:
        r.tool("lookup", "{}", '{"status": "ok", "error": null, "note": "Error: none"}')
        r.tool("lookup", "{}", "The error rate was low")

    f = analyze(runs_with(4, build))
    assert by_detector(f, "tool_error") == [] and f.one_offs == []


def test_single_occurrence_is_a_one_off_not_a_mode() -> None:
    runs = runs_with(5, clean)
    runs[2].tool("book", "{}", "Error: something odd")
    f = analyze(runs)
    assert by_detector(f, "tool_error") == []
    assert [o.detector for o in f.one_offs] == ["tool_error"] and f.one_offs[0].reason == "seen in one run"


# ---------------------------------------------------------------- hallucinated tools


def test_hallucinated_tool_requested_but_not_offered() -> None:
    def build(r: Run, i: int) -> None:
        r.llm(calls=[("refund_everything", "{}")], offered={"get_user": SCHEMA})

    f = analyze(runs_with(2, build) + runs_with(2, clean, 2))
    (m,) = by_detector(f, "hallucinated_tool")
    assert m.key == "refund_everything" and m.run_count == 2


def test_hallucinated_tool_from_unknown_tool_error() -> None:
    def build(r: Run, i: int) -> None:
        r.tool("fetch_weather", "{}", "Unknown action fetch_weather")
        r.tool("lookup", "{}", "", error="ToolNotFound: tool 'lookup_v2' not found in registry")

    f = analyze(runs_with(2, build))
    assert sorted(m.key for m in by_detector(f, "hallucinated_tool")) == ["fetch_weather", "lookup"]
    assert by_detector(f, "tool_error") == []


def test_offered_tools_are_not_hallucinated() -> None:
    def build(r: Run, i: int) -> None:
        r.llm(calls=[("get_user", '{"user_id": "a"}')], offered={"get_user": SCHEMA})
        r.llm(calls=[("anything", "{}")])  # offered unknown: never judged

    assert by_detector(analyze(runs_with(3, build)), "hallucinated_tool") == []


# ---------------------------------------------------------------- arguments


def test_invalid_and_unknown_arguments() -> None:
    def build(r: Run, i: int) -> None:
        r.llm(
            calls=[
                ("get_user", '{"user_id": "a", "verbose": true}'),
                ("get_user", '{"amount": "ten"}'),
                ("get_user", '{"user_id": "a"'),
            ],
            offered={"get_user": SCHEMA},
        )

    f = analyze(runs_with(2, build))
    keys = sorted(m.key.split("\x1f")[1] for m in by_detector(f, "invalid_arguments"))
    assert keys == ["missing `user_id` at /", "type violated at /amount", "unparseable JSON"]
    (unknown,) = by_detector(f, "unknown_parameter")
    assert unknown.key == "get_user\x1fverbose"


def test_tool_span_arguments_checked_against_offered_schema() -> None:
    def build(r: Run, i: int) -> None:
        r.llm(text="planning", offered={"get_user": SCHEMA})
        r.tool("get_user", '{"user_id": 7}', "no such user")

    f = analyze(runs_with(2, build))
    assert [m.key.split("\x1f")[1] for m in by_detector(f, "invalid_arguments")] == ["type violated at /user_id"]


def test_valid_arguments_pass() -> None:
    def build(r: Run, i: int) -> None:
        r.llm(calls=[("get_user", '{"user_id": "a", "amount": 3}')], offered={"get_user": SCHEMA})

    f = analyze(runs_with(3, build))
    assert by_detector(f, "invalid_arguments") == [] and by_detector(f, "unknown_parameter") == []


# ---------------------------------------------------------------- repetition


def test_repeated_identical_calls_ignore_key_order() -> None:
    def build(r: Run, i: int) -> None:
        r.tool("search", '{"a": 1, "b": 2}', "[]")
        r.tool("other", "{}", "x")
        r.tool("search", '{"b": 2, "a": 1}', "[]")

    (m,) = by_detector(analyze(runs_with(2, build)), "repeated_call")
    assert m.key == "search" and m.run_count == 2


def test_different_arguments_are_not_repeats() -> None:
    def build(r: Run, i: int) -> None:
        for k in range(4):
            r.tool("search", json.dumps({"page": k}), "[]")

    f = analyze(runs_with(3, build))
    assert by_detector(f, "repeated_call") == [] and by_detector(f, "retry_loop") == []


def test_retry_loop_after_errors() -> None:
    def build(r: Run, i: int) -> None:
        for k in range(3):
            r.tool("pay", json.dumps({"try": k}), f"Error: gateway busy ({k})")
        r.tool("pay", "{}", "paid")

    (m,) = by_detector(analyze(runs_with(2, build)), "retry_loop")
    assert m.key == "pay" and "4 consecutive calls" in (m.example or "")


def test_two_failures_are_not_a_loop() -> None:
    def build(r: Run, i: int) -> None:
        r.tool("pay", '{"a": 1}', "Error: busy")
        r.tool("pay", '{"a": 2}', "paid")

    assert by_detector(analyze(runs_with(3, build)), "retry_loop") == []


# ---------------------------------------------------------------- refusals


def test_refusals_and_refusal_loops() -> None:
    def build(r: Run, i: int) -> None:
        r.llm(text="I'm sorry, but I can't help with that request.")
        if i < 2:
            r.llm(text="I cannot assist with changing that booking.")

    f = analyze(runs_with(3, build))
    (ref,) = by_detector(f, "refusal")
    (loop,) = by_detector(f, "refusal_loop")
    assert ref.run_count == 3 and loop.run_count == 2


def test_helpful_answers_are_not_refusals() -> None:
    def build(r: Run, i: int) -> None:
        r.llm(text="Sorry for the wait! I can help with that: your flight is confirmed.")
        r.llm(text="I can't wait to help you plan the trip.")

    assert by_detector(analyze(runs_with(3, build)), "refusal") == []


# ---------------------------------------------------------------- budgets, LLM API, outputs


def test_budget_exhaustion() -> None:
    def build(r: Run, i: int) -> None:
        r.span("agent.loop", error=f"Max turns ({10 + i}) exceeded", etype="MaxTurnsExceeded")

    def build2(r: Run, i: int) -> None:
        r.span("graph", error="Recursion limit of 25 reached without hitting a stop condition", etype="GraphRecursionError")

    f = analyze(runs_with(2, build) + runs_with(2, build2, 2))
    assert sorted(m.key for m in by_detector(f, "budget_exhausted")) == ["max turns", "recursion limit"]
    assert by_detector(f, "exception") == []


def test_llm_api_failures_by_class() -> None:
    def build(r: Run, i: int) -> None:
        r.llm(error="RateLimitError: Error code: 429 - Rate limit reached for gpt-4o")
        r.llm(error="BadRequestError: This model's maximum context length is 128000 tokens")
        r.llm(error="APITimeoutError: Request timed out.")
        r.llm(text="", finish="content_filter")

    f = analyze(runs_with(2, build))
    keys = sorted(m.key for m in by_detector(f, "llm_api_error"))
    assert keys == ["content filter", "context length exceeded", "rate limit", "timeout"]
    rate = next(m for m in by_detector(f, "llm_api_error") if m.key == "rate limit")
    assert rate.details == {"models": ["gpt-4o"]}


def test_truncated_and_empty_final_outputs() -> None:
    def build(r: Run, i: int) -> None:
        r.llm(text="The summary of your itinerary is as fol", finish="length")
        r.llm(text="")

    f = analyze(runs_with(2, build) + runs_with(2, clean, 2))
    assert [m.run_count for m in by_detector(f, "truncated_output")] == [2]
    assert [m.run_count for m in by_detector(f, "empty_final_output")] == [2]


def test_final_answer_with_text_is_not_empty() -> None:
    f = analyze(runs_with(3, clean))
    assert by_detector(f, "empty_final_output") == [] and by_detector(f, "truncated_output") == []


def test_guardrail_trips() -> None:
    def build(r: Run, i: int) -> None:
        r.guardrail("pii_filter", triggered=True)
        r.guardrail("toxicity", triggered=False)

    (m,) = by_detector(analyze(runs_with(2, build)), "guardrail_tripped")
    assert m.key == "pii_filter"


def test_handoff_ping_pong() -> None:
    def build(r: Run, i: int) -> None:
        for a in ("triage", "billing", "triage", "billing"):
            r.agent(a)

    def straight(r: Run, i: int) -> None:
        for a in ("triage", "billing", "refunds", "billing"):
            r.agent(a)

    f = analyze(runs_with(2, build) + runs_with(3, straight, 2))
    (m,) = by_detector(f, "handoff_ping_pong")
    assert m.key == "billing <-> triage" and m.run_count == 2


def test_exceptions_by_type_and_template_not_double_counted() -> None:
    def build(r: Run, i: int) -> None:
        r.span("db.query", error=f"connection to 10.0.0.{i} refused", etype="OperationalError")
        r.tool("pay", "{}", "", error="ValueError: amount 12 too high")
        r.span("agent.step", error="ValueError: amount 12 too high", etype="ValueError")  # re-raised tool error

    f = analyze(runs_with(2, build))
    (exc,) = by_detector(f, "exception")
    assert exc.key == "OperationalError\x1fconnection to <*> refused"
    assert len(by_detector(f, "tool_error")) == 1


def test_latency_and_token_outliers() -> None:
    def build(r: Run, i: int) -> None:
        slow = i in (5, 17, 33)
        r.tool("search", "{}", "[]", dur_ms=5000 if slow else 100 + (i % 7) * 5)
        r.llm(text="ok", out_tokens=9000 if i in (8, 21) else 200 + (i % 9) * 10)

    f = analyze(runs_with(40, build))
    (lat,) = by_detector(f, "latency_outlier")
    assert lat.key == "tool:tool search" and lat.run_count == 3  # keyed by span name
    assert "5000 ms" in (lat.example or "")
    (tok,) = by_detector(f, "token_outlier")
    assert tok.key == "output:gpt-4o" and tok.run_count == 2


def test_no_outliers_in_small_or_uniform_groups() -> None:
    def build(r: Run, i: int) -> None:
        r.tool("search", "{}", "[]", dur_ms=5000 if i == 3 else 100)

    f = analyze(runs_with(10, build))  # fewer than outlier_min_samples
    assert by_detector(f, "latency_outlier") == []


def test_no_latency_outliers_below_the_absolute_floor() -> None:
    """A tight, fast distribution (a scripted model) with 3x-median stragglers that are only ms slower."""

    def build(r: Run, i: int) -> None:
        r.tool("search", "{}", "[]", dur_ms=30 if i in (5, 17, 33) else 5 + (i % 3))

    f = analyze(runs_with(40, build))
    assert by_detector(f, "latency_outlier") == []


# ---------------------------------------------------------------- contrastive


def test_contrastive_enrichment_in_failing_tests() -> None:
    def failing(r: Run, i: int) -> None:
        r.tool("escalate", "{}", "done")
        r.llm(text="Escalated.")

    def passing(r: Run, i: int) -> None:
        clean(r, i)

    runs = runs_with(12, failing, 0, "failed") + runs_with(12, passing, 12, "passed")
    f = analyze(runs)
    (m,) = [m for m in f.failure_modes if m.detector == "tool_called"]
    assert m.key == "escalate" and m.failing_test_count == 12 and m.category == "contrastive"
    assert m.enrichment is not None and m.enrichment.q_value < 0.05
    assert m.evidence and all(e.test_nodeid and e.span_id for e in m.evidence)
    assert not any(m.key == "get_user" for m in f.failure_modes)  # only in passing runs


def test_rare_signature_enriched_becomes_systemic() -> None:
    def failing(r: Run, i: int) -> None:
        r.tool("pay", "{}", "Error: fraud check rejected card")

    runs = runs_with(6, failing, 0, "failed") + runs_with(600, clean, 6, "passed")
    f = analyze(runs, min_prevalence=0.05)  # 1% of runs: below the prevalence floor...
    (m,) = by_detector(f, "tool_error")
    assert any("enriched" in b for b in m.systemic_because)  # ...but all in failing runs
    assert not any("recurs" in b for b in m.systemic_because)


def test_reraised_hallucination_and_refusal_are_not_separate_exceptions() -> None:
    def build(r: Run, i: int) -> None:
        r.llm(calls=[("cancel_order", "{}")], offered={"get_user": SCHEMA})
        r.span("turn 1", error="Tool cancel_order not found in agent support", etype="ModelBehaviorError")
        r.llm(text="I'm sorry, but I can't help with chargebacks.")
        r.span("agent run", error="Model refused to produce output: I'm sorry, but I can't help with chargebacks.",
               etype="AgentRunError")

    def lone(r: Run, i: int) -> None:  # no hallucination seen in the run: the exception stands
        r.span("turn 1", error="Tool cancel_order not found in agent support", etype="ModelBehaviorError")

    f = analyze(runs_with(2, build) + runs_with(2, lone, 2))
    assert [m.key for m in by_detector(f, "hallucinated_tool")] == ["cancel_order"]
    (exc,) = by_detector(f, "exception")
    assert exc.run_count == 2 and exc.key.startswith("ModelBehaviorError")


def test_tight_latency_distributions_need_a_real_slowdown() -> None:
    def build(r: Run, i: int) -> None:
        r.tool("cache_get", "{}", "hit", dur_ms=10.0 + (i % 3) * 0.1 + (1.0 if i in (4, 9) else 0.0))

    assert by_detector(analyze(runs_with(40, build)), "latency_outlier") == []  # 11 ms vs 10 ms: not slow
