"""Signature scan: the predicate over every span, narrowed by the index but never less than a full check."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
from spanbuilder import Run  # noqa: E402

from engine.traces.normalize import normalize  # noqa: E402
from engine.traces.signature_scan import match_signature, match_signatures, span_texts  # noqa: E402
from engine.traces.store import TraceStore  # noqa: E402

TAU = "tau-bench-airline/gpt-4o-airline.json"


def _write(path: Path, runs: list[Run]) -> Path:
    with open(path, "wb") as fh:
        for r in runs:
            for s in r.spans:
                fh.write(orjson.dumps(s) + b"\n")
    return path


@pytest.fixture()
def small(tmp_path: Path) -> TraceStore:
    runs = []
    for i in range(4):
        r = Run(i)
        r.llm(text='I can\'t "refund" that, sorry' if i % 2 else "Done.")
        r.tool("Lookup_Order", args=f'{{"order": "A-{i}"}}', result="order shipped")
        if i < 3:
            r.tool("pay", args="{}", result="", error=f"PaymentError: card declined ({i})")
        runs.append(r)
    return TraceStore.open([_write(tmp_path / "t.jsonl", runs)], cache_dir=tmp_path / "cache")


def test_fields_and_names(small: TraceStore) -> None:
    err = match_signature(small, {"tool_name": "pay", "field": "error", "regex": "card declined"})
    assert err.error is None and err.trace_count == 3 and err.span_count == 3
    assert "card declined (0)" in (err.example or "")
    # the error text is not in the output or the input
    assert match_signature(small, {"tool_name": "pay", "field": "output", "regex": "card declined"}).span_count == 0
    # names are compared without case; the input field holds the tool's arguments
    inp = match_signature(small, {"tool_name": "lookup_order", "field": "input", "regex": "A-[13]"})
    assert sorted(inp.traces) == [f"{2:032x}", f"{4:032x}"]
    assert all(len(v) == 1 for v in inp.traces.values())
    assert match_signature(small, {"span_name": "TOOL lookup_order"}).trace_count == 4
    assert match_signature(small, {"category": "llm"}).span_count == 4
    assert match_signature(small, {"category": "tool", "tool_name": "nope"}).span_count == 0


def test_escaped_json_text_still_matches(small: TraceStore) -> None:
    """The raw line holds ``can\\'t \\"refund\\"``: the literal prefilter must not lose it."""
    m = match_signature(small, {"category": "llm", "field": "output", "regex": 'can\'t "refund" that'})
    assert m.trace_count == 2
    ci = match_signature(small, {"field": "output", "regex": "(?i)CAN'T \"REFUND\""})
    assert ci.trace_count == 2


def test_invalid_signature_is_reported_not_raised(small: TraceStore) -> None:
    bad, good = match_signatures(small, [{"regex": "(x"}, {"tool_name": "pay"}])
    assert bad.error and "invalid regex" in bad.error and bad.span_count == 0
    assert good.error is None and good.span_count == 3


def _brute(store: TraceStore, sig: dict) -> dict[str, list[str]]:
    """The predicate on every span, no index help: what the scan must equal."""
    import re2

    out: dict[str, list[str]] = {}
    rx = re2.compile(sig["regex"]) if sig.get("regex") else None
    for tid, spans in store.iter_traces():
        for s in spans:
            ns = normalize(s)
            if sig.get("category") and ns.category != sig["category"]:
                continue
            if sig.get("tool_name") and (ns.tool_name or "").lower() != sig["tool_name"].lower():
                continue
            if rx is not None:
                texts = span_texts(s, ns)
                fields = ["error", "output", "input"] if sig.get("field", "any") == "any" else [sig["field"]]
                if not any(texts[f] and rx.search(texts[f]) for f in fields):
                    continue
            out.setdefault(tid, []).append(s["span_id"])
    return out


SIGS = [
    {"tool_name": "update_reservation_flights", "field": "error", "regex": r"not available on date \d{4}"},
    {"category": "tool", "field": "error", "regex": "payment amount does not add up"},
    {"field": "output", "regex": "(?i)REFUNDED"},
    {"field": "input", "regex": r"certificate_\d+"},
    {"regex": r"\bbaggage"},
    {"tool_name": "BOOK_RESERVATION"},
    {"category": "llm", "field": "output", "regex": "I'm sorry|I apologize"},
]


def test_equals_a_full_check_on_tau_bench(corpora: Path, tmp_path: Path) -> None:
    store = TraceStore.open([corpora / TAU], cache_dir=tmp_path / "cache")
    batch = match_signatures(store, SIGS)
    for sig, got in zip(SIGS, batch, strict=True):
        want = _brute(store, sig)
        assert got.traces == want, sig
        assert got.span_count == sum(map(len, want.values()))
        assert got == match_signature(store, sig)
    flights = batch[0]
    assert flights.trace_count >= 5 and "not available on date" in (flights.example or "")
    assert batch[5].scanned_spans < store.span_count  # the index narrowed the candidates


def test_accepts_paths(corpora: Path) -> None:
    m = match_signature([corpora / TAU], {"tool_name": "cancel_reservation"})
    assert m.trace_count > 10 and m.sig_id.startswith("fm-")


def test_prefilters_never_lose_escaped_spellings(tmp_path: Path) -> None:
    """Producers spell text differently in JSON (``\\u`` escapes, HTML-safe ``\\u003c``): filters stay sound."""
    import json

    r = Run(0)
    r.tool("lookup", result="<b>Überweisung</b> blocked: KELVIN \u212a and long \u017f")
    r.tool("lookup", result="plain ok")
    path = tmp_path / "escaped.jsonl"
    with open(path, "w") as fh:
        for s in r.spans:
            line = json.dumps(s, ensure_ascii=True)  # every non-ASCII character as \uXXXX
            fh.write(line.replace("<", "\\u003c").replace(">", "\\u003e") + "\n")  # Go's HTML-safe escapes
    store = TraceStore.open([path], cache_dir=tmp_path / "cache")
    for regex in ("<b>Überweisung</b> blocked", "(?i)kelvin k", "(?i)LONG S", r"berweisung</b> \w+"):
        m = match_signature(store, {"tool_name": "lookup", "field": "output", "regex": regex})
        assert m.span_count == 1, regex
    assert match_signature(store, {"field": "output", "regex": "plain ok"}).span_count == 1


def test_assertions_and_anchors_keep_their_meaning(small: TraceStore) -> None:
    assert match_signature(small, {"tool_name": "pay", "field": "error", "regex": r"^PaymentError\b"}).span_count == 3
    assert match_signature(small, {"tool_name": "pay", "field": "error", "regex": r"^card declined"}).span_count == 0
    assert match_signature(small, {"tool_name": "pay", "field": "error", "regex": r"declined \(2\)$"}).span_count == 1


GEN_SIGS = [
    {"tool_name": "run_sql", "field": "error", "regex": "invalid SQL near"},
    {"field": "error", "regex": "(?i)permission ?error"},
    {"tool_name": "send_email"},
    {"category": "llm", "field": "output", "regex": r"\brefunds? (?:with|about)"},
    {"field": "input", "regex": r"\bquarterly report\b"},
    {"field": "error", "regex": r"\d{3} (?:Too Many|Service)"},
    {"category": "tool", "field": "output", "regex": "(?i)status"},
]


def test_batch_equals_a_full_check_on_generated_traces(tmp_path: Path) -> None:
    """The generator's OpenInference LLM spans (flattened messages) and tool errors; batch = one by one = brute."""
    import subprocess

    gen = Path(__file__).parents[2] / "data" / "gen_traces.py"
    out = tmp_path / "gen.jsonl"
    subprocess.run([sys.executable, str(gen), "--spans", "3000", "--out", str(out)], check=True, capture_output=True)
    store = TraceStore.open([out], cache_dir=tmp_path / "cache")
    batch = match_signatures(store, GEN_SIGS)
    for sig, got in zip(GEN_SIGS, batch, strict=True):
        assert got.traces == _brute(store, sig), sig
    assert sum(1 for m in batch if m.span_count) >= 6


def test_spans_the_store_dropped_as_duplicates_are_not_matched(tmp_path: Path) -> None:
    """A copied file or overlapping exports: the store keeps each span once, and so do the matches."""
    runs = []
    for i in range(6):
        r = Run(i)
        r.llm(text="Done.")
        r.tool("pay", args="{}", result="", error=f"PaymentError: card declined ({i})")
        runs.append(r)
    t = _write(tmp_path / "t.jsonl", runs)
    lines = t.read_bytes().splitlines(keepends=True)
    (tmp_path / "copy.jsonl").write_bytes(t.read_bytes())
    (tmp_path / "a.jsonl").write_bytes(b"".join(lines[: len(lines) * 2 // 3]))
    (tmp_path / "b.jsonl").write_bytes(b"".join(lines[len(lines) // 3 :]))
    sigs = [{"regex": "card declined"}, {"span_name": "TOOL pay"}, {"field": "error", "regex": "Payment"}]
    one = match_signatures(TraceStore.open([t], use_cache=False), sigs)
    assert one[0].span_count == 6
    for names in (["t.jsonl", "copy.jsonl"], ["a.jsonl", "b.jsonl"]):
        store = TraceStore.open([tmp_path / n for n in names], use_cache=False)
        got = match_signatures(store, sigs)
        for m, ref in zip(got, one, strict=True):
            assert (m.span_count, m.traces, m.scanned_spans) == (ref.span_count, ref.traces, ref.scanned_spans), names
