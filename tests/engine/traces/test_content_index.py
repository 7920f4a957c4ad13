"""The content index: block filters that let regex questions skip spans, with answers identical to a full scan."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from index_testdata import span_line

from engine.traces import content_index
from engine.traces.index import TraceIndex
from engine.traces.index_cache import open_index
from engine.traces.query_models import TraceFilters
from engine.traces.regex_scan import RegexError, compile_guarded, matching_spans
from engine.traces.store import TraceStore

WORDS = [
    "quota", "exceeded", "TimeoutError", "PermissionError", "rate_limit", "refund", "booking", "flight",
    "reservation", "cancelled", "Error:", "retry", "database", "connection", "refused", "payload", "naïve",
    "über", "résumé", "tool_call", "assistant", "12345", "404", "500", "deadline", "zebra", "quokka",
]

_TOKENS = ["".join(random.Random(k).choices("abcdefghijklmnopqrstuvwxyz_", k=8)) for k in range(600)]  # rare words


def _word(rng: random.Random) -> str:
    return rng.choice(WORDS) if rng.random() < 0.7 else rng.choice(_TOKENS)


def _text(rng: random.Random, n: int) -> str:
    return " ".join(_word(rng) for _ in range(n))


def _write_traces(path: Path, spans: int, seed: int, per_trace: int = 6) -> Path:
    """Canonical spans with random text (some lines > a block long, some non-ASCII), plus junk lines."""
    rng = random.Random(seed)
    out = io.BytesIO()
    for i in range(spans):
        tid = f"{rng.randrange(spans // per_trace + 1):032x}"
        size = rng.choice((5, 20, 60, 200)) if rng.random() > 0.01 else 4000  # ~4000 words: spans several blocks
        attrs = {"output.value": _text(rng, size), "input.value": _text(rng, rng.randrange(1, 30))}
        out.write(span_line(tid, f"{i + 1:016x}", name=rng.choice(WORDS), attributes=attrs))
        if rng.random() < 0.01:
            out.write(rng.choice((b"\n", b"not json quota exceeded at all\n", b'{"trace_id": 1}\n')))
    path.write_bytes(out.getvalue())
    return path


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> TraceIndex:
    path = _write_traces(tmp_path_factory.mktemp("cix") / "t.jsonl", 1500, seed=3)
    idx = TraceIndex.build(path)
    assert idx.content is not None and idx.content.nblocks > 40  # many blocks: pruning has something to skip
    return idx


def _hits(idx: TraceIndex, pattern: str, content: bool) -> set[int]:
    brx, trx = compile_guarded(pattern)
    st_ = idx.state
    return matching_spans(idx.path, st_.off, st_.ln, brx, trx, content=idx.content if content else None)


# ------------------------------------------------------------------ required literals


@pytest.mark.parametrize(
    ("pattern", "query"),
    [
        ("quota exceeded", [[b"quota exceeded"]]),
        ("TimeoutError|PermissionError", [[b"TimeoutError"], [b"PermissionError"]]),
        (r"Error: \d{3} ", [[b"Error: "]]),
        (r"(database|connection) refused (by|at)", [[b" refused ", b"database"], [b" refused ", b"connection"]]),
        (r"(data|conn)base", None),  # branches shorter than 7 bytes: nothing to look for
        (r"(reservation|flight_booking) cancelled", [[b" cancelled", b"reservation"], [b" cancelled", b"flight_booking"]]),
        (r"deadline.{1,20}exceeded", [[b"deadline", b"exceeded"]]),
        (r"(?:exceeded)+ again", [[b"exceeded"]]),  # " again" is too short to look for
        (r"(?:exceeded)* again", None),  # " again" is 6 bytes and the repeat may be absent
        ("(?i)quota exceeded", None),  # case-insensitive: no literal bytes to look for
        ("quota(?i:exceeded)", None),
        ("quota\\nexceeded", None),  # can match a newline
        (r"quota\s+exceeded", None),
        (r"quota[^x]exceeded", None),
        (r"(?<=quota )exceeded", None),  # looks behind
        (r"\Aquota exceeded", None),
        (r"^quota exceeded$", [[b"quota exceeded"]]),
        (r"\bquota exceeded\b", [[b"quota exceeded"]]),
        ("naïve résumé", None),  # non-ASCII pieces are dropped; what is left is too short
        ("x" * 100, [[b"x" * content_index.MAX_LITERAL]]),
        ("a|quota exceeded", None),
    ],
)
def test_literal_query(pattern: str, query: list[list[bytes]] | None) -> None:
    got = content_index.literal_query(pattern)
    assert (sorted(got) if got else got) == (sorted(query) if query else query)


# ------------------------------------------------------------------ filters


def test_every_occurrence_is_a_candidate_block_edges_included(tmp_path: Path) -> None:
    """A literal planted at every offset around block edges is always found a candidate block."""
    rng = random.Random(5)
    lit = b"needle_in_hay"
    data = bytearray(rng.choice(b"abcdefghij ") for _ in range(content_index.BLOCK * 6 + 77))
    spots = [content_index.BLOCK * k + d for k in (1, 2, 3, 4) for d in range(-len(lit), 4)] + [0, len(data) - len(lit)]
    for at in spots:
        data[at : at + len(lit)] = lit
        path = tmp_path / "d.bin"
        path.write_bytes(bytes(data))
        ci = content_index.ContentIndex(content_index.build_bytes(str(path), len(data)), len(data))
        blocks = ci.literal_blocks(lit)
        assert blocks is not None and blocks[at // content_index.BLOCK], at
        data[at : at + len(lit)] = bytes(rng.choice(b"abcdefghij ") for _ in lit)


def test_parts_concatenate_into_the_single_pass_index(tmp_path: Path) -> None:
    """Groups built separately (parallel workers, appends) are byte-identical to one pass."""
    rng = random.Random(9)
    size = content_index.GROUP_BYTES * 2 + 12345
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(rng.getrandbits(8) for _ in range(size // 64)) * 64 + b"\n" * (size % 64))
    whole = content_index.build_bytes(str(path), size)
    assert len(whole) == content_index.index_bytes(size)
    parts = io.BytesIO()
    for start in range(0, size, content_index.GROUP_BYTES):
        content_index.build(str(path), start, min(size, start + content_index.GROUP_BYTES), parts)
    assert parts.getvalue() == whole


def test_index_is_a_sixteenth_of_the_file(traces: TraceIndex) -> None:
    assert content_index.index_bytes(traces.end) <= traces.end * 0.0626 + content_index.ROW


def test_rare_literal_reads_few_spans(traces: TraceIndex) -> None:
    query = content_index.literal_query("no such literal here")
    assert query is not None and traces.content is not None
    cands = traces.content.candidate_spans(traces.state.off, traces.state.ln, query)
    assert cands is not None and len(cands) < traces.span_count / 2


# ------------------------------------------------------------------ identical answers


def _phrase(rng: random.Random, k: int) -> str:
    return " ".join(_word(rng) for _ in range(k))


REGEX_PARTS = st.sampled_from(
    [r"\d+", r"\d{3}", ".", ".{0,30}", "[a-z]+", "[A-Z]", r"\w+", r"\s", " ", "x?", "(?:a|b)", r"\b", "^", "$", "[^q]", ""]
)


@st.composite
def patterns(draw: st.DrawFn) -> str:
    """Literals from the data's vocabulary glued with regex pieces, alternations and groups."""
    seed = draw(st.integers(0, 10**6))
    rng = random.Random(seed)
    pieces = []
    for _ in range(draw(st.integers(1, 3))):
        alts = [re.escape(_phrase(rng, draw(st.integers(1, 3)))) for _ in range(draw(st.integers(1, 3)))]
        lit = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        pieces.append(lit)
        pieces.append(draw(REGEX_PARTS))
    if draw(st.booleans()):
        pieces.insert(0, draw(st.sampled_from(["(?i)", "", "", "(", "(?:"])))
        if pieces[0] in ("(", "(?:"):
            pieces.append(")")
    if draw(st.integers(0, 9)) == 0:  # a literal that is nowhere
        pieces = [re.escape(draw(st.text("qxzjk", min_size=7, max_size=12)))]
    return "".join(pieces)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=patterns())
def test_pruned_scan_equals_full_scan(traces: TraceIndex, pattern: str) -> None:
    try:
        full = _hits(traces, pattern, content=False)
    except RegexError:
        return
    assert _hits(traces, pattern, content=True) == full


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), k=st.integers(2, 5))
def test_pruned_literal_equals_brute_force(traces: TraceIndex, seed: int, k: int) -> None:
    """A phrase taken from the data (or not): the pruned count is the obvious one."""
    phrase = _phrase(random.Random(seed), k)
    data = Path(traces.path).read_bytes()
    st_ = traces.state
    brute = {i for i in range(traces.span_count) if phrase.encode() in data[st_.off[i] : st_.off[i] + st_.ln[i]]}
    assert _hits(traces, re.escape(phrase), content=True) == brute


def test_store_counts_and_searches_agree_with_and_without_the_index(tmp_path: Path) -> None:
    path = _write_traces(tmp_path / "s.jsonl", 900, seed=11, per_trace=60)
    store = TraceStore.open(path, cache_dir=tmp_path / "cache")
    plain = TraceStore.open(path, use_cache=False)
    assert store.indexes[0].content is not None
    for idx in plain.indexes:
        idx.content = None
    rng = random.Random(2)
    pats = ["quota exceeded", "TimeoutError|PermissionError", r"Error: \d{3}", "refund booking flight"]
    pats += [re.escape(_phrase(rng, 3)) for _ in range(10)]
    for pat in pats:
        f = TraceFilters(regex_pattern=pat)
        assert store.count_traces(f) == plain.count_traces(f), pat
    big = max(store.trace_ids, key=lambda t: len(store.spans(t)))
    assert len(store.spans(big)) >= 32  # the per-trace search prunes too
    for pat in pats:
        assert store.search_trace(big, pat, max_matches=500) == plain.search_trace(big, pat, max_matches=500), pat


def test_cached_content_follows_appends(tmp_path: Path) -> None:
    """Cold, warm and incremental opens map a content index identical to a fresh build of the same bytes."""
    path = _write_traces(tmp_path / "a.jsonl", 700, seed=4)
    cache = tmp_path / "cache"
    idx, how = open_index(path, cache)
    assert how == "cold" and idx.content is not None
    more = _write_traces(tmp_path / "b.jsonl", 300, seed=8).read_bytes()
    with open(path, "ab") as fh:
        fh.write(more)
    grown, how = open_index(path, cache)
    assert how == "incremental" and grown.content is not None
    fresh = content_index.build_bytes(str(path), grown.end)
    assert grown.content.raw.tobytes() == fresh
    warm, how = open_index(path, cache)
    assert how == "warm"
    for pat in ("quota exceeded", "zebra quokka zebra", r"Error: \d+"):
        assert _hits(warm, pat, True) == _hits(TraceIndex.build(path), pat, False)


def test_signature_scan_prunes_with_the_content_index(tmp_path: Path) -> None:
    """Signature matching (raw-line prefilters, then exact judging) gives the same matches with and without it."""
    from engine.traces.signature_scan import match_signatures

    path = _write_traces(tmp_path / "sig.jsonl", 900, seed=21, per_trace=30)
    sigs = [
        {"regex": "quota exceeded", "field": "any"},
        {"regex": "TimeoutError|PermissionError", "field": "output"},
        {"regex": re.escape(_phrase(random.Random(1), 2)), "field": "any"},
        {"regex": "no such literal anywhere", "field": "input"},
    ]
    pruned = TraceStore.open(path, cache_dir=tmp_path / "cache")
    assert pruned.indexes[0].content is not None
    plain = TraceStore.open(path, use_cache=False)
    plain.indexes[0].content = None
    got = [(m.traces, m.span_count, m.example) for m in match_signatures(pruned, sigs)]
    want = [(m.traces, m.span_count, m.example) for m in match_signatures(plain, sigs)]
    assert got == want and any(g[1] for g in got)


def test_runs_cover_every_candidate_within_the_read_size(traces: TraceIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from engine.traces import regex_scan

    monkeypatch.setattr(regex_scan, "RUN_BYTES", 20_000)
    st_ = traces.state
    rng = random.Random(1)
    cands = np.array(sorted(rng.sample(range(traces.span_count), 400)), dtype=np.int64)
    runs = list(regex_scan._runs(cands, st_.off, st_.ln))
    covered = {i for a, b in runs for i in range(a, b + 1)}
    assert set(cands.tolist()) <= covered
    assert all(a == b or st_.off[b] + st_.ln[b] - st_.off[a] <= 20_000 for a, b in runs)
    assert all(b1 < a2 for (_, b1), (a2, _) in zip(runs, runs[1:], strict=False))
    monkeypatch.setattr(regex_scan, "RUN_BYTES", 1)  # every run is one span
    assert all(a == b for a, b in regex_scan._runs(cands, st_.off, st_.ln))
    assert _hits(traces, "quota exceeded", True) == _hits(traces, "quota exceeded", False)


def test_small_map_windows_build_the_same_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build maps the file a window at a time (bounded resident memory); the window size changes nothing."""
    rng = random.Random(3)
    size = content_index.GROUP_BYTES + content_index.BLOCK * 3 + 4097
    path = tmp_path / "w.bin"
    path.write_bytes(bytes(rng.getrandbits(8) for _ in range(4096)) * (size // 4096) + b"xyz" * ((size % 4096) // 3))
    n = path.stat().st_size
    whole = content_index.build_bytes(str(path), n)
    for window in (4096, 6000, 1 << 20):
        monkeypatch.setattr(content_index, "WINDOW", window)
        assert content_index.build_bytes(str(path), n) == whole, window
