"""The fix brief from findings: order, safe commands, redacted excerpts, and both forms saying the same."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
from spanbuilder import Run  # noqa: E402

from engine.cli import main  # noqa: E402
from engine.findings import CodeLocation, DatasetSummary, Evidence, FailureMode, Findings  # noqa: E402
from engine.publish.brief import BRIEF_JSON, BRIEF_MD, FixBrief, TraceLoader, build_brief, render_brief  # noqa: E402
from engine.run import run_analysis  # noqa: E402

SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0L1m2N3"


def mode(i: int, *, failing: int, tests: list[str], category: str = "tool_error", **kw) -> FailureMode:
    return FailureMode(
        id=f"fm-{i:012d}", title=f"Tool `t{i}` fails: boom", category=category, detector=category,
        key=f"t{i}\x1fboom <*>", run_count=len(tests), test_count=len(tests), failing_test_count=failing,
        evidence=[Evidence(trace_id=f"{j:032x}", span_id=f"{j:016x}", test_nodeid=n) for j, n in enumerate(tests)],
        **kw,
    )


def findings_of(*modes: FailureMode) -> Findings:
    return Findings(failure_modes=list(modes),
                    dataset=DatasetSummary(runs=40, tests=40, failing_tests=12, run_unit="tests"))


def test_most_important_first_with_exact_quoted_commands(tmp_path):
    weird = "tests/test_a.py::test_x[a b;rm -rf ~]"
    f = findings_of(
        mode(1, failing=1, tests=["tests/test_a.py::test_one"]),
        mode(2, failing=3, tests=[weird, "tests/test_a.py::test_two", "tests/test_b.py::test_three"],
             locations=[CodeLocation(path="app/tools.py", line=12, kind="tool_definition", why="defined here")],
             suggested_fix="validate ids", suspected_change="app/tools.py:14"),
    )
    brief = build_brief(f, run_from=tmp_path, baseline=tmp_path / ".halo" / "brief-baselines" / "findings-x.json")
    assert [m.id for m in brief.modes] == ["fm-000000000002", "fm-000000000001"]
    top = brief.modes[0]
    assert shlex.split(top.reproduce or "") == ["pytest", *sorted([weird, "tests/test_a.py::test_two",
                                                                    "tests/test_b.py::test_three"])]
    assert shlex.split(top.verify or "")[:7] == ["pytest", "--halo", "--halo-dir", ".halo/verify", "--halo-baseline",
                                                 ".halo/brief-baselines/findings-x.json", "--halo-fail-on"]
    assert top.pattern == "boom <*>" and top.locations[0].path == "app/tools.py"
    md = render_brief(brief)
    assert md.index("fm-000000000002") < md.index("fm-000000000001")
    assert "`app/tools.py:12`" in md and top.reproduce in md and str(tmp_path) in md
    assert top.suspected_change == "app/tools.py:14" and "**Suspected change.** `app/tools.py:14`" in md


def test_at_most_ten_failing_tests_and_none_that_passed(tmp_path):
    ids = [f"tests/test_many.py::test_{i:02d}" for i in range(14)]
    outcomes = {n: ("failed" if i % 7 else "passed") for i, n in enumerate(ids)}
    brief = build_brief(findings_of(mode(1, failing=12, tests=ids)), run_from=tmp_path, baseline=None,
                        outcomes=outcomes)
    m = brief.modes[0]
    repro = shlex.split(m.reproduce or "")[1:]
    assert len(repro) == 10 and all(outcomes[n] == "failed" for n in repro)
    assert m.commands_note == "10 of the 12 failing tests"


def test_runs_that_are_not_pytest_tests_get_no_command(tmp_path):
    brief = build_brief(findings_of(mode(1, failing=2, tests=["tau-bench task 4", "tau-bench task 9"])),
                        run_from=None, baseline=None)
    assert brief.modes[0].reproduce is None and "not pytest tests" in (brief.modes[0].commands_note or "")
    assert "from the pytest rootdir of the project" in render_brief(brief)


def test_excerpts_are_redacted_capped_and_cannot_break_the_markdown(tmp_path):
    evil = f"key={SECRET}\n```\n# injected heading\n\x1b[2J" + "x" * 2000
    f = findings_of(mode(1, failing=2, tests=["tests/t.py::a", "tests/t.py::b"], example=evil))
    written = FixBrief(tmp_path).publish(f, tmp_path)
    md = written[BRIEF_MD].read_text()
    js = written[BRIEF_JSON].read_text()
    assert SECRET not in md and SECRET not in js and "\x1b" not in md
    assert "````" in md  # the fence is longer than the excerpt's own backticks
    data = json.loads(js)
    assert len(data["modes"][0]["evidence"][0]) <= 400
    assert data["modes"][0]["id"] in md and data["baseline"].startswith("brief-baselines/findings-")


def test_no_systemic_modes_means_no_brief_and_no_stale_one(tmp_path):
    (tmp_path / BRIEF_MD).write_text("old")
    assert FixBrief(tmp_path).publish(findings_of(), tmp_path) == {}
    assert not (tmp_path / BRIEF_MD).exists()
    unverified = mode(1, failing=2, tests=["tests/t.py::a"], verified=False)
    assert FixBrief(tmp_path).publish(findings_of(unverified), tmp_path) == {}


def test_snapshot_is_content_named_and_survives_a_later_analysis(tmp_path):
    first = findings_of(mode(1, failing=2, tests=["tests/t.py::a", "tests/t.py::b"]))
    FixBrief(tmp_path).publish(first, tmp_path)
    snap = json.loads((tmp_path / BRIEF_JSON).read_text())["baseline"]
    FixBrief(tmp_path).publish(findings_of(mode(2, failing=2, tests=["tests/t.py::c", "tests/t.py::d"])), tmp_path)
    assert (tmp_path / snap).exists() and Findings.read(tmp_path / snap).failure_modes[0].id == "fm-000000000001"


def test_halo_brief_command_prints_markdown_and_json(tmp_path, capsys):
    halo = tmp_path / ".halo"
    halo.mkdir()
    findings_of(mode(1, failing=2, tests=["tests/t.py::a", "tests/t.py::b"])).write(halo / "findings.json")
    assert main(["brief", str(halo / "findings.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Fix brief") and f"Run every command below from `{tmp_path.resolve()}`" in out
    assert main(["brief", str(halo / "findings.json"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["modes"][0]["reproduce"] == "pytest tests/t.py::a tests/t.py::b"
    assert main(["brief", str(tmp_path / "missing.json")]) == 2


def _traced_run(tmp_path: Path) -> Path:
    """Four failing tests whose tool calls fail the same way with different ids; one call's arguments carry a
    secret and a terminal escape. Written as real canonical spans with a tests.jsonl, analysed by ``run_analysis``."""
    runs, recs = [], []
    for i in range(6):
        nodeid = f"tests/test_orders.py::test_order_{i}"
        r = Run(i, nodeid=nodeid, outcome="failed" if i < 4 else "passed")
        if i < 4:
            extra = {"note": f"key={SECRET}\x1b[2J"} if i == 1 else {}
            r.tool("lookup_order", json.dumps({"order_id": f"LEG-{i}0{i}", **extra}),
                   error=f"Error running tool (non-fatal): unsupported order id 'LEG-{i}0{i}'")
        r.llm(text="Done.")
        runs.append(r)
        recs.append({"nodeid": nodeid, "outcome": r.outcome, "trace_ids": [r.trace_id]})
    traces = tmp_path / "traces.jsonl"
    traces.write_bytes(b"".join(orjson.dumps(s) + b"\n" for r in runs for s in r.spans))
    tests = tmp_path / "tests.jsonl"
    tests.write_text("".join(json.dumps(r) + "\n" for r in recs))
    run_analysis([traces], tmp_path / ".halo", tests_file=tests, repo_root=tmp_path)
    return tmp_path / ".halo"


def _lookup(data: dict) -> dict:
    return next(m for m in data["modes"] if m["category"] == "tool_error")


def test_excerpts_come_from_distinct_spans_of_different_tests(tmp_path):
    out = _traced_run(tmp_path)
    m = _lookup(json.loads((out / BRIEF_JSON).read_text()))
    assert len(m["evidence"]) == 3 and len(set(m["evidence"])) == 3
    ids = [re.search(r"LEG-\d0\d", e).group(0) for e in m["evidence"]]  # type: ignore[union-attr]
    assert len(set(ids)) == 3 and all("called as: lookup_order" in e for e in m["evidence"])
    # each excerpt says where it was seen: three different tests, each the one whose id the excerpt shows
    assert len(m["seen_in"]) == 3 and len({s.split(" ")[0] for s in m["seen_in"]}) == 3
    for text, seen in zip(m["evidence"], m["seen_in"], strict=True):
        i = re.search(r"LEG-(\d)0", text).group(1)  # type: ignore[union-attr]
        assert seen.startswith(f"tests/test_orders.py::test_order_{i} ")
    md = (out / BRIEF_MD).read_text()
    js = (out / BRIEF_JSON).read_text()
    assert SECRET not in md + js and "\x1b" not in md + "".join(m["evidence"])
    assert any("LEG-101" in e and "[REDACTED]" in e for e in m["evidence"]), m["evidence"]
    assert all(len(e) <= 400 for e in m["evidence"])
    assert f"In `{m['seen_in'][1]}`:" in md and "Seen in:" not in md


def test_halo_brief_reads_the_traces_for_its_excerpts(tmp_path, capsys):
    out = _traced_run(tmp_path)
    assert main(["brief", str(out / "findings.json"), "--json"]) == 0
    m = _lookup(json.loads(capsys.readouterr().out))
    assert len(m["evidence"]) == 3 and SECRET not in json.dumps(m)
    (out / "traces.jsonl").write_text("")  # findings name a trace file that no longer holds the evidence
    (tmp_path / "traces.jsonl").unlink()
    assert main(["brief", str(out / "findings.json"), "--json"]) == 0
    assert len(_lookup(json.loads(capsys.readouterr().out))["evidence"]) == 1  # the stored example alone


def _rows(texts: dict[str, tuple[str, str]]) -> TraceLoader:
    """A trace loader over fixed span rows (trace id -> (span id, output text)), as ``view_rows`` shapes them."""
    def load(trace_ids):
        return {t: [{"span_id": texts[t][0], "category": "llm", "is_error": False, "output_text": texts[t][1]}]
                for t in trace_ids if t in texts}
    return load


def test_new_text_before_repeated_text_and_other_tests_before_the_same_test(tmp_path):
    tests = ["tests/t.py::a", "tests/t.py::a", "tests/t.py::b", "tests/t.py::c"]
    m = mode(1, failing=3, tests=tests, category="refusal", example="I can't help with that.")
    load = _rows({f"{j:032x}": (f"{j:016x}", text) for j, text in
                  enumerate(["I can't help with that.", "No chargebacks here.", "I can't help with that.",
                             "I can't help with that."])})
    brief = build_brief(findings_of(m), run_from=tmp_path, baseline=None, load_traces=load)
    got = brief.modes[0]
    # the example is test a's first span; a different text (even from test a) is worth more than the same
    # text again, and then another test (b, the first one) over a third span of a
    assert got.evidence == ["I can't help with that.", "No chargebacks here.", "I can't help with that."]
    assert [s.split(" ")[0] for s in got.seen_in] == ["tests/t.py::a", "tests/t.py::a", "tests/t.py::b"]
    assert got.seen_in[0].endswith(f"span {0:016x})") and got.seen_in[2].endswith(f"span {2:016x})")

    def broken(trace_ids):
        raise OSError("store gone")
    assert build_brief(findings_of(m), run_from=tmp_path, baseline=None,
                       load_traces=broken).modes[0].evidence == ["I can't help with that."]
