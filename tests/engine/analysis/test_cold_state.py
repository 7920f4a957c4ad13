"""Per-trace state kept compact while a trace is not being read changes nothing.

``engine.analysis.cold`` freezes a ``TraceState`` the scanner has not touched for a while and
thaws it when the trace turns up again or the per-run detectors need it; ``engine.traces.dedupe``
packs the span ids of such traces. The round trips must be exact, and findings.json must be
byte-identical whether states are frozen at once, never, or thawed again and again.
"""

from __future__ import annotations

import pickle
import random
import sys
from pathlib import Path

import orjson
import pytest

from engine.analysis import scan, source
from engine.analysis.cold import ColdState, freeze, thaw
from engine.analysis.config import AnalysisConfig
from engine.analysis.detectors.base import Hit, ToolExec, TraceState
from engine.run import run_analysis
from engine.traces import dedupe
from engine.traces.dedupe import SeenSpans
from engine.traces.problems import Problems
from engine.traces.recent import Recent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "traces"))
from index_testdata import generate, span_line  # noqa: E402

T0 = "2025-06-01T00:00:00.000000000Z"


def _full_state() -> TraceState:
    st = TraceState("a" * 32, nodeid="tests/test_x.py::test_y", outcome="failed")
    st.hits = [Hit("tool_errors", "lookup\x1fboom", "t", "tool", "s1", "ex", None, ("tool", "lookup"), None)]
    st.tools = [
        ToolExec(T0, "0000000000000001", "lookup", '{"q": 1}', False, ""),
        ToolExec(T0, "0000000000000002", "lookup", None, True, "boom <n>"),
        ToolExec(T0, "0000000000000003", "ünïcode", "→ \x00 ok", False),
    ]
    st.requested = [ToolExec(T0, "0000000000000004", "search", "{}", False)]
    st.final_turn = (T0, "0000000000000005", None, 2, True)
    st.agents = [(T0, "0000000000000006", "triage")]
    st.schemas = {"lookup": {"type": "object", "properties": {"q": {"type": "integer"}}, "n": 1.5}}
    st.refusals = 3
    st.explained = {"boom <n>"}
    st.input_tool_errors = {"call_1": ("call_1", "lookup", "0000000000000007", "boom")}
    st.call_names = {"call_1": ("lookup", '{"q": 2}')}
    st.pending_exceptions = [Hit("exceptions", "ValueError", "t", "exception", "s2", explained_by="tool_errors")]
    return st


@pytest.mark.parametrize(
    "make",
    [
        _full_state,
        lambda: TraceState("b" * 32),  # nothing but the id
        lambda: TraceState("c" * 32, final_turn=(T0, "0000000000000001", "", 0, False)),
        lambda: TraceState("d" * 32, refusals=1),  # only a non-packed field differs from its default
    ],
    ids=["every-field", "empty", "final-only", "rest-only"],
)
def test_freeze_thaw_round_trip(make) -> None:
    st = make()
    cold = freeze(st)
    assert cold is not None
    back = thaw(cold)
    assert back == make() and type(back.final_turn) is type(st.final_turn)
    assert all(type(t) is ToolExec for t in back.tools) and all(type(a) is tuple for a in back.agents)
    again = thaw(pickle.loads(pickle.dumps(cold)))  # how states travel from a split worker
    assert again == make()


def test_values_of_other_types_thaw_as_they_were() -> None:
    """Types the typed decoder refuses (a bool where an int is declared, an int as arguments) come back untyped."""
    st = TraceState("e" * 32, final_turn=(T0, "s", "t", True, False))  # type: ignore[arg-type]
    st.tools = [ToolExec(T0, "s", "lookup", 7, False)]  # type: ignore[arg-type]
    back = thaw(freeze(st))  # type: ignore[arg-type]
    assert back == st and back.final_turn[3] is True and back.tools[0].arguments == 7  # type: ignore[index]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda st: st.tools.append(ToolExec(T0, "s", "lookup", "\ud800", False)),  # lone surrogate
        lambda st: setattr(st, "final_turn", (T0, "s", "t", 2**70, False)),  # beyond 64 bits
        lambda st: setattr(st, "my_note", 1),  # an attribute TraceState does not declare
    ],
    ids=["surrogate", "huge-int", "extra-attribute"],
)
def test_what_cannot_be_packed_stays_as_it_is(spoil) -> None:
    st = _full_state()
    spoil(st)
    assert freeze(st) is None


def test_seen_spans_packs_and_unpacks_exactly() -> None:
    seen = SeenSpans(hot=1)
    odd = {
        "t1": [f"{i:016x}" for i in range(40)],  # the usual ids: packed to bytes
        "t2": ["ABCDEF0123456789", "abcdef0123456789"],  # upper case: packed as the joined string
        "t3": ["ab cd ef 0123456", "ü" * 16, "0123456789abcdef"],  # 16 chars, not hex
        "t4": ["short", "a much longer span id"],  # other widths: kept as a set
    }
    for tid, ids in odd.items():
        seen.ids(tid).update(ids)
    seen.ids("other")  # packs t4 (and, one by one, the others before it)
    assert [type(seen._by_trace[t]) for t in odd] == [bytes, str, str, set]
    for tid, ids in odd.items():
        for sid in ids:
            assert (tid, sid) in seen
        assert (tid, "0000000000000fff") not in seen and (tid, "short!") not in seen
        assert seen.ids(tid) == set(ids)  # unpacked again
    assert seen._recent.revivals == 3  # t4 was never packed


def test_recent_gives_up_when_keys_keep_coming_back() -> None:
    recent: Recent[int] = Recent(4)
    rng = random.Random(1)
    evicted = 0
    for _ in range(20000):
        if recent.touch(rng.randrange(1000)) is not None:
            evicted += 1
            recent.revived()  # every packed key comes back in a shuffled stream
    assert evicted < 2000  # stopped packing instead of packing on (almost) every touch


def _findings(paths: list[Path], out: Path, hot: int, monkeypatch: pytest.MonkeyPatch, fast: bool = True) -> bytes:
    monkeypatch.setattr(scan, "HOT_TRACES", hot)
    monkeypatch.setattr(dedupe, "HOT_TRACES", hot)
    monkeypatch.setattr(source, "FAST_JSONL", fast)
    run_analysis(paths, out, jobs=1)
    return (out / "findings.json").read_bytes()


def _same_frozen_or_not(paths: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """findings.json with states never frozen == frozen as soon as another trace is read, fast and dict paths."""
    never = _findings(paths, tmp_path / "never", 1 << 40, monkeypatch)
    for fast in (True, False):
        assert _findings(paths, tmp_path / f"at-once-{fast}", 1, monkeypatch, fast) == never, fast
    data = orjson.loads(never)
    assert data["failure_modes"] or data["one_offs"]  # something to compare
    return data


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("cold") / "g.jsonl", 3000)


def test_generated_file_frozen_or_not(gen: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_frozen_or_not([gen], tmp_path, monkeypatch)


def test_interleaved_repeated_and_odd_spans_frozen_or_not(gen: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Traces interleaved and read again (every state thawed and frozen over and over), errors, odd lines."""
    rng = random.Random(5)
    lines = gen.read_bytes().splitlines(keepends=True)
    mixed = lines[:]
    rng.shuffle(mixed)
    extra = []
    for i, line in enumerate(lines[::50]):
        tid = orjson.loads(line)["trace_id"]
        extra.append(span_line(tid, f"{i:015x}z", name="odd", status={"code": "STATUS_CODE_ERROR", "message": "x"}))
        extra.append(b"garbage\n")
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(lines[:1500] + mixed + extra + lines[1000:]))
    data = _same_frozen_or_not([path, gen], tmp_path, monkeypatch)
    assert data["dataset"]["spans"] == 3000 + len(extra) // 2


def test_vendored_corpora_frozen_or_not(corpora: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_frozen_or_not([corpora], tmp_path, monkeypatch)


def test_contiguous_scan_keeps_only_recent_traces_unfrozen(gen: Path) -> None:
    sc = scan.Scanner(AnalysisConfig())
    source.scan_inputs(sc, [gen], Problems(), [], jobs=1)
    hot = [st for st in sc.states if type(st) is not ColdState]
    assert len(sc.states) > scan.HOT_TRACES and len(hot) == scan.HOT_TRACES
    assert sc._recent.revivals == 0
