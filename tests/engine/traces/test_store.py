"""The store: filters, regex counts vs brute force, byte budgets on every tool, iteration, formats."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from index_testdata import brute_rollups, generate, span_line

from engine.traces import query_models
from engine.traces.budget import DEFAULT_BUDGET, size_of
from engine.traces.regex_scan import RegexError
from engine.traces.store import TraceStore


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("g") / "t.jsonl", 2000)


@pytest.fixture(scope="module")
def store(gen: Path, tmp_path_factory: pytest.TempPathFactory) -> TraceStore:
    return TraceStore.open(gen, cache_dir=tmp_path_factory.mktemp("cache"))


def _brute_regex(path: Path, pattern: str) -> int:
    rx = re.compile(pattern, re.MULTILINE)
    hit: set[str] = set()
    with open(path, "rb") as fh:
        for line in fh:
            if rx.search(line.decode("utf-8", errors="replace").rstrip("\n")):
                hit.add(orjson.loads(line)["trace_id"])
    return len(hit)


@pytest.mark.parametrize(
    "pattern",
    [
        "quota exceeded",
        r"TimeoutError|PermissionError",
        r'"rows":\s*4\d\b',  # \d, \s, \b: str semantics path
        r"(?i)RATELIMITERROR",
        r"^\{\"trace_id\":\"0",  # anchored at the start of a span line
        r"send_email\"\}$",  # anchored at its end
        "no such text anywhere",
    ],
)
def test_regex_count_equals_brute_force(store: TraceStore, gen: Path, pattern: str) -> None:
    assert store.count_traces(query_models.TraceFilters(regex_pattern=pattern)).total == _brute_regex(gen, pattern)


def test_regex_with_indexed_filters_reads_only_candidates(store: TraceStore, gen: Path) -> None:
    brute = brute_rollups(gen)
    rx = re.compile("quota exceeded")
    want = set()
    with open(gen, "rb") as fh:
        for line in fh:
            d = orjson.loads(line)
            if rx.search(line.decode()) and "claude-sonnet-4-5" in brute[d["trace_id"]]["models"]:
                want.add(d["trace_id"])
    f = query_models.TraceFilters(regex_pattern="quota exceeded", model_names=["claude-sonnet-4-5"])
    assert store.count_traces(f).total == len(want)
    assert {t.trace_id for t in store.query_traces(f, limit=500).traces} == want


def test_bad_and_catastrophic_regexes_are_refused_clearly(store: TraceStore) -> None:
    with pytest.raises(RegexError, match="invalid regex"):
        store.count_traces(query_models.TraceFilters(regex_pattern="(unclosed"))
    with pytest.raises(RegexError, match="nests a repeat"):
        store.count_traces(query_models.TraceFilters(regex_pattern="(a+)+$"))
    with pytest.raises(RegexError, match="limit"):
        store.count_traces(query_models.TraceFilters(regex_pattern="a" * 5000))
    with pytest.raises(ValueError, match="not a timestamp"):
        store.count_traces(query_models.TraceFilters(start_time_gte="yesterday"))


def test_index_filters_match_brute_force(store: TraceStore, gen: Path) -> None:
    brute = brute_rollups(gen)

    def count(f: query_models.TraceFilters) -> int:
        return store.count_traces(f).total

    assert count(query_models.TraceFilters()) == len(brute)
    assert count(query_models.TraceFilters(has_errors=True)) == sum(1 for b in brute.values() if b["err"])
    assert count(query_models.TraceFilters(has_errors=False)) == sum(1 for b in brute.values() if not b["err"])
    assert count(query_models.TraceFilters(model_names=["gpt-4.1-mini", "nope"])) == sum(
        1 for b in brute.values() if "gpt-4.1-mini" in b["models"]
    )
    assert count(query_models.TraceFilters(tool_names=["run_sql"])) == sum(1 for b in brute.values() if "run_sql" in b["tools"])
    assert count(query_models.TraceFilters(agent_names=["coder"], service_names=["agent-svc"])) == sum(
        1 for b in brute.values() if "coder" in b["agents"] and "agent-svc" in b["services"]
    )
    assert count(query_models.TraceFilters(categories=["tool"])) == sum(1 for b in brute.values() if b["cats"].get("tool"))
    mid = sorted(b["start"] for b in brute.values())[len(brute) // 2]
    from engine.traces.span import ns_to_iso

    assert count(query_models.TraceFilters(start_time_gte=ns_to_iso(mid))) == sum(
        1 for b in brute.values() if b["start"] >= mid
    )
    with pytest.raises(ValueError, match="unknown categories"):
        count(query_models.TraceFilters(categories=["bogus"]))


def test_times_compare_as_numbers_not_strings(tmp_path: Path) -> None:
    p = tmp_path / "tz.jsonl"
    # A starts 08:00Z written with a +02:00 offset; B starts 09:00Z. As strings A ("10:00") > B.
    p.write_bytes(
        span_line("a" * 32, "1" * 16, start_time="2025-06-01T10:00:00+02:00", end_time="2025-06-01T10:00:01+02:00")
        + span_line("b" * 32, "2" * 16, start_time="2025-06-01T09:00:00Z", end_time="2025-06-01T09:00:01Z")
    )
    s = TraceStore.open(p, cache_dir=tmp_path / "c")
    got = s.query_traces(query_models.TraceFilters(start_time_gte="2025-06-01T08:30:00Z")).traces
    assert [t.trace_id for t in got] == ["b" * 32]
    assert s.summary("a" * 32).start_time == "2025-06-01T08:00:00.000000000Z"


def test_test_linkage_filters(tmp_path: Path) -> None:
    p = tmp_path / "tests.jsonl"
    lines = []
    for i, (node, outcome) in enumerate([("t.py::a", "passed"), ("t.py::b", "failed"), ("u.py::c", "error")]):
        tid = f"{i + 1:032x}"
        lines.append(span_line(tid, "1" * 16, attributes={"halo.test.nodeid": node, "halo.test.outcome": outcome}))
        lines.append(span_line(tid, "2" * 16, "1" * 16))
    p.write_bytes(b"".join(lines))
    s = TraceStore.open(p, cache_dir=tmp_path / "c")
    assert s.count_traces(query_models.TraceFilters(test_outcome="failed")).total == 1
    assert s.count_traces(query_models.TraceFilters(test_outcome=["failed", "error"])).total == 2
    assert s.count_traces(query_models.TraceFilters(test_nodeid="t.py::")).total == 2
    ov = s.get_dataset_overview()
    assert ov.test_outcomes == {"passed": 1, "failed": 1, "error": 1}
    assert s.summary(f"{2:032x}").test_nodeid == "t.py::b"


def test_iter_traces_is_complete_grouped_and_deterministic(store: TraceStore, gen: Path) -> None:
    first = [(t, [s["span_id"] for s in spans]) for t, spans in store.iter_traces()]
    second = [(t, [s["span_id"] for s in spans]) for t, spans in store.iter_traces()]
    assert first == second
    lines = [orjson.loads(x) for x in gen.read_bytes().splitlines()]
    order = list(dict.fromkeys(d["trace_id"] for d in lines))
    assert [t for t, _ in first] == order
    by_trace: dict[str, list[str]] = {}
    for d in lines:
        by_trace.setdefault(d["trace_id"], []).append(d["span_id"])
    assert dict(first) == by_trace
    assert sum(1 for _ in store.iter_spans()) == 2000
    t0, spans0 = next(iter(store.iter_traces()))
    assert spans0[0] == lines[0]  # spans come back exactly as written


def test_query_and_overview(store: TraceStore, gen: Path) -> None:
    brute = brute_rollups(gen)
    q = store.query_traces(limit=10, offset=5)
    assert q.total == len(brute) and len(q.traces) == 10 and "offset=15" in q.note
    t = q.traces[0]
    b = brute[t.trace_id]
    assert (t.span_count, t.error_span_count, t.total_input_tokens) == (b["n"], b["err"], b["tin"])
    assert sorted(t.model_names) == sorted(b["models"])
    ov = store.get_dataset_overview(query_models.TraceFilters(has_errors=True))
    assert ov.total_traces == sum(1 for b in brute.values() if b["err"])
    assert ov.error_span_count == sum(b["err"] for b in brute.values())
    assert ov.error_taxonomy and ov.error_taxonomy[0].error_span_count >= ov.error_taxonomy[-1].error_span_count
    assert len(ov.sample_trace_ids) == min(20, ov.total_traces)
    assert len(store.get_dataset_overview().sample_trace_ids) == 20


def test_view_search_render(store: TraceStore) -> None:
    tid = store.trace_ids[0]
    v = store.view_trace(tid)
    assert v.oversized is None and len(v.spans) == store.summary(tid).span_count
    sid = v.spans[0]["span_id"]
    vs = store.view_spans(tid, [sid, "f" * 16])
    assert [s["span_id"] for s in vs.spans] == [sid] and "f" * 16 in vs.note
    r = store.search_trace(tid, "generation")
    assert r.match_count >= 1 and r.matches[0].trace_id == tid
    r2 = store.search_span(tid, sid, '"span_id"')
    assert r2.match_count == 1
    with pytest.raises(KeyError):
        store.search_span(tid, "f" * 16, "x")
    with pytest.raises(KeyError):
        store.view_trace("0" * 32)
    text = store.render_trace(tid).text
    assert text.startswith(f"trace {tid}") and "[agent]" in text and "[llm]" in text
    assert text.count("\n  - ") == store.summary(tid).span_count - 1  # children indented under the root


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> TraceStore:
    """One trace with a 50 MB attribute, 300 medium spans, and long names/values everywhere."""
    d = tmp_path_factory.mktemp("huge")
    tid = "e" * 32
    lines = [span_line(tid, "0" * 15 + "1", name="root", attributes={"blob": "x" * (50 * 1024 * 1024)})]
    for i in range(2, 302):
        attrs = {"output.value": "needle " * 2000, "tool.name": f"tool_{i}" * 50, "openinference.span.kind": "TOOL"}
        lines.append(span_line(tid, f"{i:016x}", "0" * 15 + "1", name="n" * 3000, attributes=attrs))
    (d / "h.jsonl").write_bytes(b"".join(lines))
    return TraceStore.open(d / "h.jsonl", cache_dir=d / "c")


def test_no_result_exceeds_the_byte_budget(huge: TraceStore) -> None:
    tid = "e" * 32
    big = "0" * 15 + "1"
    results = [
        huge.view_trace(tid),
        huge.view_spans(tid, [big]),
        huge.view_spans(tid, [big] + [f"{i:016x}" for i in range(2, 200)]),
        huge.search_trace(tid, "needle", context_buffer_chars=2000, max_matches=500),
        huge.search_trace(tid, "x+"),
        huge.search_span(tid, big, "x{100}", context_buffer_chars=2000, max_matches=500),
        huge.query_traces(limit=500),
        huge.get_dataset_overview(),
        huge.count_traces(),
        huge.render_trace(tid),
    ]
    for r in results:
        assert size_of(r) <= DEFAULT_BUDGET, (type(r).__name__, size_of(r))
    view = results[0]
    assert view.oversized is not None and view.oversized.span_count == 301
    assert "search_trace" in view.oversized.recommendation
    one = results[1]
    assert one.spans and "truncated" in one.spans[0]["attributes"]["blob"]
    many = results[2]
    assert many.note and "view_spans" in many.note
    assert results[3].has_more and results[3].note
    assert results[9].truncated and "more spans" in results[9].text


def test_multiple_files_one_dataset(tmp_path: Path, gen: Path) -> None:
    other = tmp_path / "o.jsonl"
    tid = orjson.loads(gen.read_bytes().split(b"\n", 1)[0])["trace_id"]
    other.write_bytes(span_line(tid, "f" * 16, name="extra") + span_line("9" * 32, "1" * 16))
    s = TraceStore.open([gen, other], cache_dir=tmp_path / "c")
    assert len(s.files) == 2 and s.span_count == 2002
    spans = s.spans(tid)
    assert spans[-1]["name"] == "extra"
    assert s.summary(tid).span_count == len(spans)
    assert s.count_traces().total == len(brute_rollups(gen)) + 1


def test_missing_file_is_counted_not_raised(tmp_path: Path) -> None:
    s = TraceStore.open([tmp_path / "nope.jsonl"], cache_dir=tmp_path / "c")
    assert s.span_count == 0 and s.problems.skipped["unreadable_file"] == 1


def test_foreign_format_is_converted_in_the_cache_then_indexed(tmp_path: Path, corpora: Path) -> None:
    src = corpora / "tau-bench-airline" / "gpt-4o-airline.json"
    cache = tmp_path / "c"
    s = TraceStore.open(src, cache_dir=cache)
    assert s.files[0].format == "tau_bench" and s.span_count > 0
    assert s.files[0].indexed_path.startswith(str(cache))
    assert len(s) == 200  # one trace per run
    assert s.count_traces(query_models.TraceFilters(test_outcome=["failed"])).total > 0
    s2 = TraceStore.open(src, cache_dir=cache)
    assert s2.files[0].how == "warm" and s2.span_count == s.span_count


HALO_CHECK = r"""
import asyncio, json, sys, tempfile
from pathlib import Path
from engine.traces.trace_index_builder import TraceIndexBuilder
from engine.traces.trace_store import TraceStore
from engine.traces.models.trace_query_models import TraceFilters
path = Path(sys.argv[1])
tmp = Path(tempfile.mkdtemp())
idx, meta = tmp / "t.engine-index.jsonl", tmp / "t.engine-index.meta.json"
asyncio.run(TraceIndexBuilder.build_index(path, idx, meta, schema_version=2))
store = TraceStore.load(path, idx)
out = {"errors": store.count_traces(TraceFilters(has_errors=True)).total,
       "regex": [store.count_traces(TraceFilters(regex_pattern=p)).total for p in sys.argv[2:]],
       "rows": {}}
for line in idx.read_text().splitlines():
    r = json.loads(line)
    st = store.search_trace(r["trace_id"], "Error|tool", max_matches=500)
    out["rows"][r["trace_id"]] = [r["span_count"], r["total_input_tokens"], r["total_output_tokens"],
                                  [s.span_id for s in store.view_trace(r["trace_id"]).spans],
                                  st.match_count, [(m.span_id, m.match_start_char, m.match_text) for m in st.matches]]
print(json.dumps(out))
"""


def test_store_agrees_with_halo_engine(tmp_path: Path, halo_engine_python: Path) -> None:
    """Same file, same answers: per-trace span counts and tokens, error traces, regex counts, views."""
    import subprocess

    src = generate(tmp_path / "t.jsonl", 900)  # below halo-engine's 1000-line worker-pool threshold
    patterns = ["quota exceeded", "TimeoutError|PermissionError", r"rows\":\s*1\d,"]
    r = subprocess.run(
        [str(halo_engine_python), "-I", "-c", HALO_CHECK, str(src), *patterns],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    halo = orjson.loads(r.stdout)
    ours = TraceStore.open(src, cache_dir=tmp_path / "c")
    assert ours.count_traces(query_models.TraceFilters(has_errors=True)).total == halo["errors"]
    assert [ours.count_traces(query_models.TraceFilters(regex_pattern=p)).total for p in patterns] == halo["regex"]
    mine = {}
    for tid in ours.trace_ids:
        s = ours.summary(tid)
        st = ours.search_trace(tid, "Error|tool", max_matches=500)
        mine[tid] = [
            s.span_count,
            s.total_input_tokens,
            s.total_output_tokens,
            [x["span_id"] for x in ours.view_trace(tid).spans],
            st.match_count,
            [[m.span_id, m.match_start_char, m.match_text] for m in st.matches],
        ]
    for tid, row in mine.items():
        h = halo["rows"][tid]
        assert row[:5] == h[:5]  # spans, tokens, view, total regex matches
        assert row[5] == h[5][: len(row[5])] and row[5]  # same records; ours cut to the byte budget


def test_overview_with_thousands_of_long_facets_fits(tmp_path: Path) -> None:
    p = tmp_path / "facets.jsonl"
    lines = []
    for i in range(1500):
        a = {"llm.model_name": f"model-{i}-" + "m" * 300, "agent.name": f"agent-{i}-" + "a" * 300,
             "openinference.span.kind": "LLM"}
        lines.append(span_line(f"{i + 1:032x}", "1" * 16, resource={"attributes": {"service.name": "s" * 300 + str(i)}},
                               status={"code": "STATUS_CODE_ERROR", "message": f"err {i} " + "e" * 300},
                               attributes=a, name=f"name {i} " + "n" * 300))
    p.write_bytes(b"".join(lines))
    s = TraceStore.open(p, cache_dir=tmp_path / "c")
    ov = s.get_dataset_overview()
    assert size_of(ov) <= DEFAULT_BUDGET and ov.total_traces == 1500 and ov.error_trace_count == 1500
    assert ov.model_names and ov.model_names[-1].startswith("…+")
    q = s.query_traces(limit=500)
    assert size_of(q) <= DEFAULT_BUDGET and q.note


def test_regex_count_is_exact_across_small_mmap_windows(
    store: TraceStore, gen: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows far smaller than the file (and than some lines) split nothing and miss nothing."""
    from engine.traces import regex_scan

    monkeypatch.setattr(regex_scan, "WINDOW", 4096)
    for pattern in ["quota exceeded", r"rows\":\s*4\d", "TimeoutError|PermissionError", r"(?i)ratelimit"]:
        assert store.count_traces(query_models.TraceFilters(regex_pattern=pattern)).total == _brute_regex(gen, pattern)


def test_regex_unicode_semantics_on_non_ascii_lines(tmp_path: Path) -> None:
    """\\w and \\d mean what Python's str regex means, also on raw UTF-8 lines (halo-engine's semantics)."""
    p = tmp_path / "u.jsonl"
    p.write_bytes(
        span_line("1" * 32, "1" * 16, name="café ٤٢")  # Arabic-Indic digits
        + span_line("2" * 32, "1" * 16, name="cafe 42")
        + span_line("3" * 32, "1" * 16, name="tea")
    )
    s = TraceStore.open(p, cache_dir=tmp_path / "c")
    for pattern in [r"caf\w \d+", r"caf\w", r"\d\d\"", "(?i)CAFÉ", "café|tea"]:
        assert s.count_traces(query_models.TraceFilters(regex_pattern=pattern)).total == _brute_regex(p, pattern), pattern


def test_unusable_cache_dir_still_opens_every_format(tmp_path: Path, corpora: Path, gen: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")  # the cache dir would have to live under a file: every write fails
    src = corpora / "tau-bench-airline" / "gpt-4o-airline.json"
    s = TraceStore.open([src, gen], cache_dir=blocker / "cache")
    assert [f.format for f in s.files] == ["tau_bench", "canonical"]
    assert len(s) == 200 + len(brute_rollups(gen)) and not s.problems.skipped.get("unreadable_file")
    assert s.count_traces(query_models.TraceFilters(regex_pattern="quota exceeded")).total == _brute_regex(gen, "quota exceeded")


def test_no_cache_converts_into_a_temp_dir(tmp_path: Path, corpora: Path) -> None:
    src = corpora / "swe-agent-traj" / "pydicom-1458.traj"
    s = TraceStore.open(src, cache_dir=tmp_path / "c", use_cache=False)
    assert s.files[0].format == "swe_agent" and s.span_count > 0 and s.files[0].how == "uncached"
    assert not (tmp_path / "c").exists()
    assert s.render_trace(s.trace_ids[0]).text.startswith("trace ")


def test_every_tool_is_callable_by_name_with_json_arguments(store: TraceStore) -> None:
    tid = store.trace_ids[0]
    sid = store.spans(tid)[0]["span_id"]
    args = {
        "get_dataset_overview": {"filters": {"has_errors": True}},
        "query_traces": {"filters": {"tool_names": ["run_sql"]}, "limit": 3},
        "count_traces": {"filters": {"regex_pattern": "quota exceeded"}},
        "view_trace": {"trace_id": tid},
        "view_spans": {"trace_id": tid, "span_ids": [sid]},
        "search_trace": {"trace_id": tid, "regex_pattern": "generation"},
        "search_span": {"trace_id": tid, "span_id": sid, "regex_pattern": "trace_id"},
        "render_trace": {"trace_id": tid},
    }
    assert set(args) == set(query_models.TOOLS)
    for name, a in args.items():
        out = store.call_tool(name, a)
        assert isinstance(out, query_models.TOOLS[name].result) and size_of(out) <= DEFAULT_BUDGET
        query_models.TOOLS[name].arguments.model_json_schema()  # usable as an LLM tool schema
    with pytest.raises(ValueError):
        store.call_tool("count_traces", {"filters": {"project_id": "x"}})  # unknown filter: refused, not ignored


def test_the_same_file_twice_is_read_once(tmp_path: Path, gen: Path) -> None:
    link = tmp_path / "link.jsonl"
    link.symlink_to(gen)
    s = TraceStore.open([gen, link, gen.parent], cache_dir=tmp_path / "c")
    assert len(s.files) == 1 and s.span_count == 2000


def test_catastrophic_backtracking_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``(a|a)*b`` takes exponential time; it is refused up front (``re`` only) or stopped at the deadline."""
    import time as _time

    from engine.traces import regex_scan

    monkeypatch.setattr(regex_scan, "SCAN_SECONDS", 1.0)
    p = tmp_path / "aaa.jsonl"
    p.write_bytes(span_line("1" * 32, "1" * 16, name="a" * 5000) + span_line("2" * 32, "1" * 16, name="ab"))
    s = TraceStore.open(p, cache_dir=tmp_path / "c")
    cpu0 = _time.process_time()
    with pytest.raises(RegexError) as err:
        s.count_traces(query_models.TraceFilters(regex_pattern="(a|a)*b"))
    assert ("time limit" if regex_scan._regex_mod is not None else "alternation") in str(err.value)
    # The regex module's timeout counts this process's CPU time (wall time was 16 s on a loaded machine).
    assert _time.process_time() - cpu0 < 10
    with pytest.raises(RegexError):
        s.search_trace("1" * 32, "(a|a)*b")


def test_regex_deadline_is_enforced(gen: Path, store: TraceStore) -> None:
    from engine.traces import regex_scan

    if regex_scan._regex_mod is None:
        pytest.skip("the regex module (interruptible searches) is not installed")
    idx = store.indexes[0]
    brx, trx = regex_scan.compile_guarded(r"rows\W+4\d", seconds=0.0)
    with pytest.raises(RegexError, match="time limit"):
        regex_scan.matching_spans(idx.path, idx.state.off, idx.state.ln, brx, trx)


def test_invalid_regex_fails_even_when_no_trace_is_a_candidate(store: TraceStore) -> None:
    with pytest.raises(RegexError, match="invalid regex"):
        store.count_traces(query_models.TraceFilters(model_names=["no such model"], regex_pattern="(oops"))


HALO_LOAD = r"""
import asyncio, json, sys, tempfile
from pathlib import Path
from engine.traces.models.canonical_span import SpanRecord
from engine.traces.trace_index_builder import TraceIndexBuilder
from engine.traces.trace_store import TraceStore
out = {}
for arg in sys.argv[1:]:
    path = Path(arg)
    n = sum(1 for line in path.read_bytes().splitlines() if SpanRecord.model_validate_json(line))
    tmp = Path(tempfile.mkdtemp())
    idx, meta = tmp / "t.engine-index.jsonl", tmp / "t.engine-index.meta.json"
    asyncio.run(TraceIndexBuilder.build_index(path, idx, meta, schema_version=2))
    store = TraceStore.load(path, idx)
    out[arg] = [n, store.trace_count]
print(json.dumps(out))
"""


def test_files_the_store_converts_load_in_halo_engine(
    tmp_path: Path, corpora: Path, halo_engine_python: Path
) -> None:
    """The canonical JSONL the store writes into its cache for foreign formats is valid halo-engine input."""
    import subprocess

    srcs = [corpora / "swe-agent-traj" / "pydicom-1458.traj", *sorted((corpora / "any-agent-otel").glob("openai-*.json"))[:3]]
    s = TraceStore.open(srcs, cache_dir=tmp_path / "c")
    converted = [f.indexed_path for f in s.files if f.spans]
    assert converted and all(p.startswith(str(tmp_path / "c")) for p in converted)
    r = subprocess.run(
        [str(halo_engine_python), "-I", "-c", HALO_LOAD, *converted], capture_output=True, text=True, cwd="/"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    halo = orjson.loads(r.stdout)
    for f in s.files:
        if f.spans:
            assert halo[f.indexed_path] == [f.spans, f.traces]
