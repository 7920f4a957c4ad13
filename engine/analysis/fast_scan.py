"""The scanner's loop for canonical JSONL files: typed partial decode, no dict per span.

Each line is decoded into ``engine.traces.projection.SpanView`` (only the fields the scan reads;
the rest of the line is skipped unallocated). Plain spans — a successful tool call with a clean
result, a plain-text LLM call, an agent or chain span, with the OpenInference kind spelled
exactly — are handled here with the same decisions as ``Scanner.add_dicts``. Every other line
(projection refused it, possible error, another dialect, tools offered...) is decoded again the
general way (``canonical_line.line_span``) and handed to ``Scanner.add_dicts``, so its treatment
is exactly the dict path's. Tests run both paths over the same files and compare findings.
"""

from __future__ import annotations

from pathlib import Path

from engine.analysis.canonical_line import line_span
from engine.analysis.detectors import refusals
from engine.analysis.detectors.base import ToolExec, TraceState
from engine.analysis.detectors.outliers import DETECTOR_LATENCY, DETECTOR_TOKENS
from engine.analysis.detectors.refusals import is_refusal
from engine.analysis.detectors.tool_errors import result_error
from engine.analysis.lite import duration_ms
from engine.analysis.scan import OI_CATEGORY, RESULT_SUSPECT, Scanner
from engine.traces.canonical_reader import open_part
from engine.traces.dedupe import DUPLICATE, SeenSpans, is_duplicate
from engine.traces.lines import iter_views
from engine.traces.problems import Problems
from engine.traces.projection import ABSENT, DECODE_ERRORS, DECODER, PLAIN_STATUSES, status_code
from engine.traces.span import STATUS_ERROR


def scan_jsonl(
    sc: Scanner,
    path: Path,
    problems: Problems,
    last_tid: str | None = None,
    seen: SeenSpans | None = None,
    part: tuple[int, int, str] | None = None,
    lines: list[int] | None = None,
) -> str | None:
    """Feed one canonical JSONL file to ``sc``; returns the last trace id (see ``Scanner.add_dicts``).

    Never raises for bad data or an unreadable file (tallied in ``problems``). A span whose
    (trace id, span id) is already in ``seen`` (shared by every file of one analysis) is skipped
    as ``duplicate_span``, so a file read twice or a trace split over overlapping files counts once.
    ``part``: only bytes ``[start, stop)`` (line boundaries), problems located as ``label:line``
    with lines counted from the part's start; ``lines`` receives the number of lines read.

    One flat loop with local aliases, like ``add_dicts``: it runs once per span.
    """
    if seen is None:
        seen = SeenSpans()
    first_byte, stop_byte, where = part if part is not None else (0, None, str(path))
    decode = DECODER.decode
    index = sc.index
    latency, tokens_out = sc.outliers.latency, sc.outliers.tokens
    oi_kinds = OI_CATEGORY
    suspect = RESULT_SUSPECT
    absent = ABSENT
    plain0, plain1 = PLAIN_STATUSES
    idx = -1 if last_tid is None else index[last_tid]
    st: TraceState = sc.state(idx) if last_tid is not None else TraceState("")
    # span ids of the current trace (the first span of a (trace, span) pair wins)
    ids: set[str] = seen.ids(last_tid) if last_tid is not None else set()
    n = 0
    lineno = 0
    try:
        with open_part(str(path), first_byte, stop_byte) as fh:
            # views into one buffer; bytes for invalid UTF-8, which msgspec would accept in skipped values
            for lineno, line in enumerate(iter_views(fh), 1):
                if type(line) is bytes:
                    s = None
                else:
                    try:
                        s = decode(line)
                    except DECODE_ERRORS:
                        s = None
                slow = s is None
                if not slow:
                    a = s.attributes  # type: ignore[union-attr]
                    cat = oi_kinds.get(a.oi_kind)  # type: ignore[arg-type]
                    status = s.status  # type: ignore[union-attr]
                    if status != plain0 and status != plain1:
                        try:
                            if status_code(status) == STATUS_ERROR:
                                cat = None
                        except DECODE_ERRORS:  # not an object with a string code: the dict path decides
                            cat = None
                    slow = (
                        cat is None
                        or a.error_type is not absent
                        or a.lf_level is not absent
                        or a.exit_status is not absent
                    )
                    if slow:
                        pass
                    elif cat == "tool":
                        tool = a.tool_name
                        args = a.args0  # normalize's rule: first present and not None
                        if args is None:
                            args = (
                                a.args1 if a.args1 is not None else a.args2 if a.args2 is not None
                                else a.args3 if a.args3 is not None else a.args4 if a.args4 is not None else a.args5
                            )
                        result = a.result0
                        if result is None:
                            result = (
                                a.result1 if a.result1 is not None else a.result2 if a.result2 is not None
                                else a.result3 if a.result3 is not None else a.result4 if a.result4 is not None
                                else a.result5
                            )
                        c = result[:1] if result is not None else "?"
                        # add_dicts sends these to Scanner._tool, which (no error status here) keeps a plain
                        # call unless result_error finds an in-band error: ask it directly
                        slow = not tool or (
                            (c in suspect or (c == "{" and ('rror"' in result or "alse" in result or 'tatus"' in result)))  # type: ignore[operator]
                            and result_error(result) is not None
                        )
                    elif cat == "llm":
                        text = a.text
                        slow = (
                            text is None
                            or a.llm_c0 is not absent
                            or a.llm_c1 is not absent
                            or a.llm_c2 is not absent
                            or a.llm_c3 is not absent
                            or a.llm_c4 is not absent
                            or a.llm_c5 is not absent
                        )
                        if not slow:  # add_dicts' rule: tools requested but no tool spans -> read the inputs
                            j = idx if s.trace_id == last_tid else index.get(s.trace_id, -1)  # type: ignore[union-attr]
                            if j >= 0:
                                sj = sc.state(j)
                                slow = bool(sj.requested) and not sj.tools
                    elif cat == "guardrail":
                        slow = True
                if slow:
                    span = line_span(bytes(line), where, lineno, problems)  # type: ignore[arg-type]
                    if span is not None:
                        if is_duplicate(seen, span, where, lineno, problems):
                            continue
                        last_tid = sc.add_dicts((span,), last_tid)
                        idx = index[last_tid]  # type: ignore[index]
                        st = sc.state(idx)
                        ids = seen.ids(last_tid)  # type: ignore[arg-type]
                    continue
                tid = s.trace_id  # type: ignore[union-attr]
                if tid != last_tid:
                    ids = seen.ids(tid)
                    last_tid = tid
                    idx, st = sc.enter(tid)
                    if st.outcome is None:
                        nodeid = a.nodeid
                        if nodeid:
                            sc.link_test(st, nodeid, a.outcome)
                span_id = s.span_id  # type: ignore[union-attr]
                if span_id in ids:
                    problems.skip(DUPLICATE, f"{where}:{lineno}", f"span {span_id} of trace {tid} read again")
                    continue
                ids.add(span_id)
                n += 1
                name = s.name  # type: ignore[union-attr]
                start = s.start_time  # type: ignore[union-attr]
                key = name
                if cat == "tool":
                    st.tools.append(ToolExec(start, span_id, tool, args, False, ""))  # type: ignore[arg-type]
                elif cat == "llm":
                    key = a.model0 or a.model1 or a.model2 or a.model3 or a.model4 or a.model5 or name
                    finish = a.finish0
                    if finish is None:
                        finish = (
                            a.finish1 if a.finish1 is not None else a.finish2 if a.finish2 is not None else a.finish3
                        )
                    if finish:
                        sc.note_finish(st, finish, key, span_id, text)
                    if text and is_refusal(text):
                        st.refusals += 1
                        agent = a.agent0 or a.agent1 or a.agent2 or a.agent3 or ""
                        st.hits.append(refusals.hit(agent, span_id, text))
                    end = s.end_time  # type: ignore[union-attr]
                    final = st.final_turn  # TraceState.llm_turn, inlined
                    if final is None or end > final[0] or (end == final[0] and span_id > final[1]):
                        st.final_turn = (end, span_id, text, 0, False)
                    tokens = a.out_tokens0
                    if tokens is None:  # add_dicts: the first key unless absent, else the first truthy one
                        tokens = a.out_tokens1 or a.out_tokens2 or a.out_tokens3 or a.out_tokens4
                    if tokens is not None and tokens > 0:
                        g = tokens_out.get(key) or sc.outliers.group(DETECTOR_TOKENS, key, "output")
                        g.values.append(tokens)
                        g.traces.append(idx)
                        if tokens >= g.floor:
                            g.offer(float(tokens), idx, span_id)
                elif cat == "agent":
                    st.agents.append((start, span_id, a.agent0 or a.agent1 or a.agent2 or a.agent3 or name))
                if a.synthetic_time is not absent:  # converters invent times for transcripts: no latency
                    continue
                end = s.end_time  # type: ignore[union-attr]
                if len(start) == 30 and len(end) == 30 and start[:17] == end[:17]:
                    try:
                        ms = (float(end[17:29]) - float(start[17:29])) * 1000.0
                    except ValueError:
                        ms = 0.0
                else:
                    ms = duration_ms(start, end)
                if ms > 0:
                    g = latency.get(key) or sc.outliers.group(DETECTOR_LATENCY, key, cat)  # type: ignore[arg-type]
                    g.values.append(ms)
                    g.traces.append(idx)
                    if ms >= g.floor:
                        g.offer(ms, idx, span_id)
    except OSError as exc:  # as the span iterators do: tallied, the spans read so far count
        problems.skip("unreadable_file", str(path), f"{type(exc).__name__}: {exc}")
    finally:
        sc.spans += n
        if lines is not None:
            lines.append(lineno)
    return last_tid
