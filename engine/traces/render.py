"""``render_trace``: a trace as a compact indented text tree an LLM (or a human) can scan.

One line per span: name, category, duration, status and the facts that matter for failure
analysis (model and tokens, tool and its arguments/result, error message, finish reason,
test outcome), each fact clipped. Orphans hang at the top level marked as such; links cut
to break parent cycles are shown as roots. The text is cut to the byte budget with a
line saying how many spans were left out and how to get them.
"""

from __future__ import annotations

from typing import Any

from engine.traces.normalize import normalize
from engine.traces.span import iso_to_ns

FACT_CHARS = 160


def _clip(value: Any, n: int = FACT_CHARS) -> str:
    s = value if isinstance(value, str) else repr(value)
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _dur(ns: int) -> str:
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.2f}s"
    return f"{ns / 1e6:.1f}ms"


def span_line(span: dict[str, Any]) -> str:
    """One span's line (without indentation)."""
    n = normalize(span)
    status = (span.get("status") or {}).get("code", "")
    status = {"STATUS_CODE_ERROR": "ERROR", "STATUS_CODE_OK": "OK"}.get(status, "-")
    parts = [f"{_clip(n.name, 80)} [{n.category}] {_dur(max(0, n.end_ns - n.start_ns))} {status}"]
    parts.append(f"id={n.span_id}")
    if n.model:
        parts.append(f"model={_clip(n.model, 60)}")
    if n.input_tokens or n.output_tokens:
        parts.append(f"tokens={n.input_tokens or 0}/{n.output_tokens or 0}")
    if n.tool_name:
        parts.append(f"tool={_clip(n.tool_name, 60)}")
    if n.tool_arguments:
        parts.append(f"args={_clip(n.tool_arguments)}")
    if n.tool_result:
        parts.append(f"result={_clip(n.tool_result)}")
    if n.tool_calls_requested:
        parts.append("calls=" + _clip(",".join(c.name for c in n.tool_calls_requested), 100))
    if n.finish_reason:
        parts.append(f"finish={_clip(n.finish_reason, 40)}")
    if n.is_error and (n.error_message or n.error_type):
        parts.append(f"error={_clip(n.error_message or n.error_type)}")
    elif n.output_text and n.category == "llm":
        parts.append(f"says={_clip(n.output_text, 100)}")
    if n.test_outcome:
        parts.append(f"test={_clip(n.test_nodeid or '', 100)} [{n.test_outcome}]")
    return " ".join(parts)


def render(trace_id: str, spans: list[dict[str, Any]], budget: int) -> tuple[str, bool]:
    """``(text, truncated)``: the span tree within ``budget`` bytes (spans are already repaired)."""
    ids = {s.get("span_id") for s in spans}
    children: dict[str, list[int]] = {}
    roots: list[int] = []
    for i, s in enumerate(spans):
        p = s.get("parent_span_id") or ""
        if p and p in ids and p != s.get("span_id"):
            children.setdefault(p, []).append(i)
        else:
            roots.append(i)

    def start(i: int) -> int:
        return iso_to_ns(spans[i].get("start_time") or "") or 0

    starts = [iso_to_ns(s.get("start_time") or "") or 0 for s in spans]
    ends = [iso_to_ns(s.get("end_time") or "") or 0 for s in spans]
    errors = sum(1 for s in spans if (s.get("status") or {}).get("code") == "STATUS_CODE_ERROR")
    t0 = min(starts) if starts else 0
    t1 = max(ends) if ends else 0
    header = f"trace {trace_id} · {len(spans)} spans · {_dur(max(0, t1 - t0))} · {errors} error span(s)"
    lines = [header]
    used = len(header.encode()) + 1
    shown = 0
    truncated = False
    seen: set[int] = set()
    stack: list[tuple[int, int]] = [(i, 0) for i in sorted(roots, key=lambda i: (starts[i], i), reverse=True)]
    while stack:
        i, depth = stack.pop()
        if i in seen:  # defensive: a cycle the index did not cut
            continue
        seen.add(i)
        s = spans[i]
        mark = ""
        p = s.get("parent_span_id") or ""
        if depth == 0 and p and p not in ids:
            mark = f" (orphan: parent {p} not in trace)"
        line = "  " * depth + "- " + span_line(s) + mark
        size = len(line.encode()) + 1
        if used + size > budget - 200:
            truncated = True
            break
        lines.append(line)
        used += size
        shown += 1
        kids = children.get(s.get("span_id") or "", [])
        for k in sorted(kids, key=lambda k: (starts[k], k), reverse=True):
            stack.append((k, depth + 1))
    unseen = [i for i in range(len(spans)) if i not in seen]
    if not truncated and unseen:  # members of cycles nobody cut: show them flat
        for i in unseen:
            line = "- " + span_line(spans[i]) + " (in a parent cycle)"
            if used + len(line.encode()) + 1 > budget - 200:
                truncated = True
                break
            lines.append(line)
            used += len(line.encode()) + 1
            shown += 1
    if truncated:
        lines.append(
            f"… {len(spans) - shown} more spans not shown (byte budget {budget:,}); "
            "use search_trace(trace_id, pattern) or view_spans(trace_id, [span ids]) for them"
        )
    return "\n".join(lines), truncated
