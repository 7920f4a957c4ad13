"""System prompts of the root agent and the subagents, and the root's starting facts."""

from __future__ import annotations

from typing import Any

from engine.sanitize import excerpt

TOOL_RULES = """\
Tool rules:
1. Call `get_dataset_overview` first (without a regex) to size the dataset; it gives real `sample_trace_ids`.
   Never invent a trace or span id: use ids from a tool result.
2. Narrow with indexed filters (has_errors, tool_names, categories, test_outcome, agent_names) and `count_traces`
   before `filters.regex_pattern`, which scans raw spans.
3. Read a trace with `render_trace` (compact) or `view_trace`; when it is `oversized`, use `search_trace` then
   `view_spans` on the span ids it returns. `synthesize_traces` summarizes many traces cheaply.
4. A tool error tells you what to fix: fix the arguments, do not retry the same call.
5. Compacted results say `[compacted … ctx-N]`; `get_context_item` returns the original when you need it.
6. Look for *systemic* problems: patterns that recur across runs, or that separate failing tests from passing
   ones (`get_tests`, `get_failure_modes`), not one-off accidents."""

SIGNATURE_RULES = """\
Every failure mode you report in `final_answer` needs evidence (real trace ids, span ids where you have them)
and, whenever possible, a `signature`: a predicate over spans that re-finds the mode without a model —
optional `category` (agent, llm, tool, chain, guardrail, handoff, other), `tool_name`, `span_name`, a `field`
(error, output, input, any) and an RE2 `regex` (no lookarounds or backreferences) searched in that field.
The engine runs each signature over every span: a mode whose signature matches nothing, or none of its own
evidence, or that cites an unknown trace id, is rejected (you get one chance to correct it). A pattern no
signature can express (e.g. "promises a refund without calling issue_refund") may omit the signature; it is
then reported as unverified. When the code tools show where a mode comes from, give `suspected_change`:
`path:line` relative to the repository (with `git_diff`, a line the change under review changed); it goes
into the fix brief, and one that does not check out is dropped."""

ROOT_TEMPLATE = """\
You are the root agent of HALO, which finds systemic failure modes of AI agents in their traces.

Budget: at most {max_turns} turns (model requests) for you; the last one is reserved for `final_answer`. Plan
the shortest path to an answer and finish with margin.
Depth: you are at depth 0 of maximum_depth={max_depth}. {delegation}

{tool_rules}

{signature_rules}

End the run only by calling `final_answer` once with your Markdown report in `answer` and the modes in
`failure_modes`; a plain message does not end the run.

Instructions:
{prompt}"""

SUB_TEMPLATE = """\
You are a HALO subagent at depth={depth} of maximum_depth={max_depth}, answering one question from your
parent agent with the trace tools. You have at most {max_turns} turns. {delegation}

{tool_rules}

When done, reply with a concise plain-text answer that cites the trace ids and span ids you relied on and the
exact error or output text that characterises each pattern (your parent turns it into signatures). You do
not have `final_answer`."""


def _delegation(depth: int, max_depth: int, max_parallel: int) -> str:
    if depth < max_depth:
        return (f"Delegate well-posed, self-contained questions with `call_subagent` (up to {max_parallel} run at "
                "once; several calls in one turn run in parallel) instead of reading many traces yourself.")
    return "You cannot delegate further."


def root_system(settings: Any) -> str:
    return ROOT_TEMPLATE.format(
        max_turns=settings.max_turns, max_depth=settings.max_depth,
        delegation=_delegation(0, settings.max_depth, settings.max_parallel),
        tool_rules=TOOL_RULES, signature_rules=SIGNATURE_RULES, prompt=settings.prompt,
    )


def sub_system(settings: Any, depth: int) -> str:
    return SUB_TEMPLATE.format(
        depth=depth, max_depth=settings.max_depth, max_turns=settings.max_turns,
        delegation=_delegation(depth, settings.max_depth, settings.max_parallel), tool_rules=TOOL_RULES,
    )


def starting_facts(findings: Any, limit: int = 12) -> str:
    """The deterministic findings in a few lines: the root's first user message."""
    if findings is None:
        return "No deterministic findings are available; start with get_dataset_overview."
    ds = findings.dataset
    lines = [
        f"Dataset: {ds.traces} traces, {ds.spans} spans, {ds.tests} tests ({ds.failing_tests} failing, "
        f"{ds.passing_tests} passing); a run is a {ds.run_unit[:-1]}, {ds.runs} runs.",
        f"The deterministic detectors found {len(findings.failure_modes)} systemic failure modes "
        f"({len(findings.one_offs)} one-offs). Top modes (get_failure_modes has details and evidence ids):",
    ]
    for m in findings.failure_modes[:limit]:
        lines.append(f"- {m.id} [{m.category}] {excerpt(m.title, 140)} — {m.run_count} runs, "
                     f"{m.failing_test_count} failing tests")
    if len(findings.failure_modes) > limit:
        lines.append(f"- … and {len(findings.failure_modes) - limit} more")
    return "\n".join(lines)
