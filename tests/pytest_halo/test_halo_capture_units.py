"""Unit tests of the capture pieces that need no subprocess: caps, writer threads, attribution, merge, ids."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import orjson

from pytest_halo.capture.agents_sdk import error_type, otel_span_id, otel_trace_id
from pytest_halo.capture.test_context import TestContext
from pytest_halo.capture.writer import JsonlWriter, cap_attributes, value_limit_from_env
from pytest_halo.merge import merge_parts
from pytest_halo.records import TestRecords


def test_cap_attributes_records_keys_and_leaves_small_values():
    attrs = {"a": "x" * 10, "b": "y" * 11, "c": ["z" * 20, 3], "d": 5}
    assert cap_attributes(attrs, 10) == ["b", "c"]
    assert attrs == {"a": "x" * 10, "b": "y" * 10, "c": ["z" * 10, 3], "d": 5}


def test_value_limit_env(monkeypatch):
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "123")
    assert value_limit_from_env() == 123
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "nope")
    assert value_limit_from_env() == 64 * 1024


def test_writer_is_thread_safe_and_drops_writes_after_close(tmp_path):
    w = JsonlWriter(tmp_path / "p.jsonl", buffering=64)

    def burst(k):
        for i in range(500):
            w.write({"k": k, "i": i, "pad": "p" * (i % 50), "odd": {1, 2}})

    threads = [threading.Thread(target=burst, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    w.write({"late": True})
    rows = [orjson.loads(x) for x in (tmp_path / "p.jsonl").read_bytes().splitlines()]
    assert len(rows) == 4000 == w.count
    assert len({(r["k"], r["i"]) for r in rows}) == 4000


def test_trace_claimed_by_first_test_keeps_later_spans():
    ctx = TestContext()
    assert ctx.attribution("t0") is None  # outside any test
    ctx.enter("a.py::test_1", "call")
    ctx.claim("t1")
    ctx.leave()
    ctx.enter("a.py::test_2", "setup")
    assert ctx.attribution("t1") == ("a.py::test_1", "call")  # background span of test_1
    assert ctx.attribution("t2") == ("a.py::test_2", "setup")
    ctx.phase = "teardown"
    assert ctx.attribution("t2") == ("a.py::test_2", "teardown")


def _span(tid, sid, nodeid=None):
    attrs = {"tool.name": "t", "halo.test.nodeid": nodeid} if nodeid else {}
    return {"trace_id": tid, "span_id": sid, "parent_span_id": "", "name": "s", "attributes": attrs}


def test_merge_scans_parts_of_crashed_writers(tmp_path):
    p1, p2 = tmp_path / "r-gw0.jsonl", tmp_path / "r-gw1.jsonl"  # no .index.json: writers died
    p1.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in [_span("a" * 32, "1" * 16, "t::x"),
                                                               _span("a" * 32, "2" * 16, "t::x")]))
    p2.write_bytes(orjson.dumps(_span("a" * 32, "1" * 16, "t::x")) + b"\n" + orjson.dumps(_span("b" * 32, "3" * 16))
                   + b'\n{"trace_id": "c')  # a crashed worker's torn last line
    stats = merge_parts([p1, p2], tmp_path / "traces.jsonl", {"t::x": "failed"})
    rows = [orjson.loads(x) for x in (tmp_path / "traces.jsonl").read_bytes().splitlines()]
    assert (stats.spans, stats.duplicates, stats.bad_lines, stats.traces, stats.scanned_parts) == (3, 1, 1, 2, 2)
    assert [r["attributes"].get("halo.test.outcome") for r in rows] == ["failed", "failed", None]
    assert list(stats.traces_by_test["t::x"]) == ["a" * 32]


def _emit(rec, n, trace=None):
    rec.emit({"trace_id": f"{trace or n:032x}", "span_id": f"{n:016x}", "parent_span_id": "", "name": f"s{n}",
              "attributes": {"k": "v"}})


def test_recorder_holds_test_spans_until_outcome_and_merge_concatenates(tmp_path):
    from pytest_halo.capture.recorder import Recorder, index_path

    odd = 'a.py::test_q[say "hi" \\ {}]'
    w0 = Recorder(tmp_path / "r-gw0.jsonl", "r", "gw0")
    w0.context.enter(odd, "call")
    _emit(w0, 1)
    w0.flush()
    assert not (tmp_path / "r-gw0.jsonl").exists()  # held: the outcome is not known yet
    w0.context.leave()
    w0.test_finished(odd, "failed")
    _emit(w0, 9, trace=1)  # a background span of the finished test's trace: stamped at once
    _emit(w0, 2)  # outside any test
    w0.close()
    assert index_path(tmp_path / "r-gw0.jsonl").exists()
    w1 = Recorder(tmp_path / "r-gw1.jsonl", "r", "gw1")
    w1.context.enter("b.py::t", "setup")
    _emit(w1, 3)
    w1.close()  # the test never finished: written without outcome
    stats = merge_parts([tmp_path / "r-gw0.jsonl", tmp_path / "r-gw1.jsonl"], tmp_path / "traces.jsonl", {})
    rows = [orjson.loads(x) for x in (tmp_path / "traces.jsonl").read_bytes().splitlines()]
    got = [(r["name"], r["attributes"].get("halo.test.nodeid"), r["attributes"].get("halo.test.outcome"),
            r["attributes"]["halo.test.worker"]) for r in rows]
    assert got == [("s1", odd, "failed", "gw0"), ("s9", odd, "failed", "gw0"), ("s2", None, None, "gw0"),
                   ("s3", "b.py::t", None, "gw1")]
    assert (stats.spans, stats.traces, stats.scanned_parts) == (4, 3, 0)
    assert stats.spans_by_test == {odd: 2, "b.py::t": 1}
    assert not index_path(tmp_path / "r-gw0.jsonl").exists()


def test_sdk_ids_become_stable_valid_otel_ids():
    hexpart = "0123456789abcdef0123456789abcdef"
    assert otel_trace_id("trace_" + hexpart) == hexpart
    custom = otel_trace_id("my-custom-trace")
    assert len(custom) == 32 and custom == otel_trace_id("my-custom-trace")
    assert otel_trace_id("trace_" + "0" * 32) != "0" * 32  # all-zero is not a valid OTel id
    sid = otel_span_id("span_abc123")
    assert len(sid) == 16 and int(sid, 16) >= 0 and sid == otel_span_id("span_abc123")
    assert error_type("Error running tool (non-fatal)") == "ToolError"
    assert error_type("Max turns exceeded") == "MaxTurnsExceeded"


def _report(nodeid, when, outcome, longrepr=None, **kw):
    return SimpleNamespace(nodeid=nodeid, when=when, outcome=outcome, failed=outcome == "failed",
                           skipped=outcome == "skipped", passed=outcome == "passed", duration=0.5,
                           longrepr=longrepr, **kw)


def test_records_outcomes():
    r = TestRecords()
    crash = SimpleNamespace(reprcrash=SimpleNamespace(message="AssertionError: nope\nmore"))
    for rep in [_report("a", "setup", "passed"), _report("a", "call", "failed", crash), _report("a", "teardown", "passed"),
                _report("b", "setup", "failed", crash), _report("b", "teardown", "passed"),
                _report("c", "setup", "skipped", ("f.py", 1, "Skipped: no db")),
                _report("d", "setup", "passed"), _report("d", "call", "passed"), _report("d", "teardown", "failed", crash)]:
        r.add(rep, "master")
    assert r.outcomes() == {"a": "failed", "b": "error", "c": "skipped", "d": "error"}
    assert r.by_nodeid["a"]["reason"] == "AssertionError: nope"
    assert r.by_nodeid["c"]["reason"] == "Skipped: no db"
    assert r.by_nodeid["a"]["duration"] == 1.5


def test_otel_fast_serialisation_matches_the_canonical_dict(tmp_path):
    from opentelemetry import trace as api
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from pytest_halo.capture.otel import HaloSpanProcessor
    from pytest_halo.capture.recorder import Recorder

    ended = []

    class Keep(SpanProcessor):
        def on_end(self, span):
            ended.append(span)

    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_span_processor(Keep())
    tracer = provider.get_tracer("t", "1.2")
    with tracer.start_as_current_span('root "quoted" ✓', kind=api.SpanKind.CLIENT, attributes={"a": (1, 2)}):
        with tracer.start_as_current_span("child") as child:
            child.add_event("gen_ai.choice", {"index": 0})
            child.record_exception(KeyError("k"))
            child.set_status(api.Status(api.StatusCode.ERROR, "boom"))
    rec = Recorder(tmp_path / "r-master.jsonl", "r", "master")
    proc = HaloSpanProcessor(rec)
    for span in ended:
        proc.on_end(span)
    rec.close()
    written = [orjson.loads(x) for x in (tmp_path / "r-master.jsonl").read_bytes().splitlines()]
    for span, row in zip(ended, written, strict=True):
        expected = orjson.loads(orjson.dumps(proc.convert(span)))
        expected["attributes"].update({"halo.test.worker": "master", "halo.run.id": "r"})
        assert row == expected
    child_row = written[0]
    assert child_row["status"] == {"code": "STATUS_CODE_ERROR", "message": "boom"}
    assert child_row["attributes"]["exception.type"] == "KeyError"
    assert "gen_ai.choice" in child_row["attributes"]["halo.events"]
    assert written[1]["kind"] == "SPAN_KIND_CLIENT" and written[1]["attributes"]["a"] == [1, 2]


def test_otel_render_pins_the_exact_canonical_line(tmp_path):
    """Held SDK spans rendered at test end: byte-for-byte the canonical JSON of ``engine.traces.span``."""
    from opentelemetry import trace as api
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from engine.traces.span import make_span, ns_to_iso, span_id_hex, trace_id_hex
    from pytest_halo.capture.otel import HaloSpanProcessor
    from pytest_halo.capture.recorder import Recorder

    rec = Recorder(tmp_path / "r-gw1.jsonl", "run1", "gw1", value_limit=16)
    proc = HaloSpanProcessor(rec)
    provider = TracerProvider(resource=Resource({"service.name": "svc", "tags": ("a", "b")}))
    provider.add_span_processor(proc)
    tracer = provider.get_tracer("lib", "0.9")
    rec.context.enter("t.py::test_x", "call")
    t0 = 1_763_700_000_123_456_789
    root = tracer.start_span("root", start_time=t0)
    with api.use_span(root, end_on_exit=False):
        child = tracer.start_span('tool "q" ✓', kind=api.SpanKind.CLIENT, start_time=t0 + 5,
                                 attributes={"short": "ok", "long": "x" * 40, "n": 3, "seq": ("y" * 20, "z")})
    child.add_event("gen_ai.choice", {"index": 0}, timestamp=t0 + 7)
    child.add_event("exception", {"exception.type": "KeyError", "exception.message": "'k'"}, timestamp=t0 + 8)
    child.set_status(api.Status(api.StatusCode.ERROR, "boom"))
    child.end(end_time=t0 + 2_000_000_000)  # the next second: a second cached ISO prefix
    root.end(end_time=t0 + 3_000_000_000)
    assert not (tmp_path / "r-gw1.jsonl").exists()  # held until the test ends
    rec.context.leave()
    rec.test_finished("t.py::test_x", "failed")
    rec.close()

    ctx, parent = child.get_span_context(), root.get_span_context()
    linkage = {"halo.test.worker": "gw1", "halo.run.id": "run1", "halo.test.phase": "call",
               "halo.test.nodeid": "t.py::test_x", "halo.test.outcome": "failed"}
    events = [{"name": "gen_ai.choice", "time": ns_to_iso(t0 + 7), "attributes": {"index": 0}}]
    child_attrs = {"short": "ok", "long": "x" * 16, "n": 3, "seq": ["y" * 16, "z"],
                   "exception.type": "KeyError", "exception.message": "'k'",
                   "halo.events": orjson.dumps(events).decode()[:16],  # capped like any attribute
                   "halo.truncated_attributes": ["long", "seq", "halo.events"]}
    common = {"resource_attributes": {"service.name": "svc", "tags": ["a", "b"]}, "scope_name": "lib",
              "scope_version": "0.9", "trace_id": trace_id_hex(ctx.trace_id)}
    expected = [
        make_span(span_id=span_id_hex(ctx.span_id), parent_span_id=span_id_hex(parent.span_id), name='tool "q" ✓',
                  kind="SPAN_KIND_CLIENT", start_ns=t0 + 5, end_ns=t0 + 2_000_000_000, status_code="STATUS_CODE_ERROR",
                  status_message="boom", attributes={**child_attrs, **linkage}, **common),
        make_span(span_id=span_id_hex(parent.span_id), name="root", start_ns=t0, end_ns=t0 + 3_000_000_000,
                  status_code="STATUS_CODE_UNSET", kind="SPAN_KIND_INTERNAL", attributes=linkage, **common),
    ]
    assert expected[0]["end_time"] == "2025-11-21T04:40:02.123456789Z"
    written = (tmp_path / "r-gw1.jsonl").read_bytes()
    assert written == b"".join(orjson.dumps(s) + b"\n" for s in expected)


def test_long_test_spans_rendered_early_keep_order_outcome_and_index(tmp_path, monkeypatch):
    from opentelemetry.sdk.trace import TracerProvider

    from pytest_halo.capture import recorder as recorder_mod
    from pytest_halo.capture.otel import HaloSpanProcessor
    from pytest_halo.capture.recorder import Recorder, index_path

    monkeypatch.setattr(recorder_mod, "HOLD_LIMIT", 3)
    rec = Recorder(tmp_path / "r-master.jsonl", "r", "master")
    provider = TracerProvider()
    provider.add_span_processor(HaloSpanProcessor(rec))
    tracer = provider.get_tracer("t")
    rec.context.enter("t.py::long", "call")
    for i in range(7):
        with tracer.start_as_current_span(f"s{i}"):
            pass
        if i == 3:
            _emit(rec, 99, trace=5)  # a manual-API span in between
    rec.context.leave()
    rec.test_finished("t.py::long", "passed")
    rec.context.enter("t.py::never_finished", "call")
    for i in range(5):
        with tracer.start_as_current_span(f"u{i}"):
            pass
    rec.close()  # written without an outcome: the placeholder is dropped
    blob = (tmp_path / "r-master.jsonl").read_bytes()
    assert b"\x00" not in blob
    rows = [orjson.loads(x) for x in blob.splitlines()]
    assert [r["name"] for r in rows] == ["s0", "s1", "s2", "s3", "s99", "s4", "s5", "s6", "u0", "u1", "u2", "u3", "u4"]
    assert [r["attributes"].get("halo.test.outcome") for r in rows] == ["passed"] * 8 + [None] * 5
    index = orjson.loads(index_path(tmp_path / "r-master.jsonl").read_bytes())
    assert index["spans"] == 13 and index["tests"]["t.py::long"]["spans"] == 8
    assert index["tests"]["t.py::long"]["trace_ids"] == list(dict.fromkeys(r["trace_id"] for r in rows[:8]))


def test_tests_with_spans_but_no_report_are_unknown_or_interrupted(tmp_path):
    from pytest_halo.merge import MergeStats
    from pytest_halo.session import write_tests

    records = TestRecords()
    records.add(SimpleNamespace(nodeid="t.py::a", when="call", outcome="passed", failed=False, skipped=False,
                                duration=0.1), "gw0")
    stats = MergeStats()
    stats.traces_by_test = {"t.py::a": {"t1": None}, "t.py::b": {"t2": None}}
    stats.spans_by_test = {"t.py::a": 1, "t.py::b": 3}
    for interrupted, expected in ((False, "unknown"), (True, "interrupted")):
        out = tmp_path / f"tests-{interrupted}.jsonl"
        assert write_tests(out, records, stats, "run", interrupted=interrupted) == 2
        rows = {r["nodeid"]: r for r in map(orjson.loads, out.read_bytes().splitlines())}
        assert rows["t.py::a"]["outcome"] == "passed"
        assert rows["t.py::b"]["outcome"] == expected and rows["t.py::b"]["spans"] == 3
        assert rows["t.py::b"]["trace_ids"] == ["t2"]


def test_exit_status_when_our_analysis_fails_depends_on_whether_a_gate_was_asked_for(tmp_path):
    from pytest_halo.merge import MergeStats
    from pytest_halo.options import HaloConfig
    from pytest_halo.session import SessionResult, gate_exit_status

    failed = SessionResult(tmp_path, tmp_path / "t", tmp_path / "s", MergeStats(), analysis_error="boom")
    base = tmp_path / "base.json"
    assert gate_exit_status(0, failed, HaloConfig()) == (0, None)  # no gate: our failure is not the user's
    status, line = gate_exit_status(0, failed, HaloConfig(baseline=base))
    assert status == 3 and line is not None and "fails closed" in line
    assert gate_exit_status(1, failed, HaloConfig(baseline=base)) == (1, None)  # red stays red, never greener
    assert gate_exit_status(0, failed, HaloConfig(fail_on="any"))[0] == 3
    assert gate_exit_status(0, failed, HaloConfig(baseline=base, fail_on="never")) == (0, None)
    assert gate_exit_status(0, failed, HaloConfig(baseline=base, update_baseline=True)) == (0, None)
    assert "--halo-strict" in (gate_exit_status(0, failed, HaloConfig(strict=True))[1] or "")
