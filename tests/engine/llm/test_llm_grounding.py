"""``final_answer``'s checks on the real tau-bench store: ids, spans, signatures."""

from __future__ import annotations

from engine.findings import Signature
from engine.llm.grounding import Grounder, rejection_message
from engine.llm.tools.agent_tools import ProposedMode
from engine.signatures import signature_id

PAYMENT = Signature(tool_name="book_reservation", field="error", regex="payment amount does not add up")


def _payment_evidence(store):
    from engine.traces.signature_scan import match_signature

    m = match_signature(store, PAYMENT)
    tid, spans = next(iter(m.traces.items()))
    return tid, spans[0], m


def _mode(**kw):
    base = {"title": "t", "category": "tool_error", "evidence": [], "signature": None}
    base.update(kw)
    return ProposedMode.model_validate(base)


def test_accepted_mode_gets_the_signature_id_and_match_counts(tau_store):
    tid, sid, match = _payment_evidence(tau_store)
    out = Grounder(tau_store).check([_mode(evidence=[{"trace_id": tid, "span_id": sid}], signature=PAYMENT)], 1)
    assert not out.rejected
    (m,) = out.accepted
    assert m.id == signature_id(PAYMENT) and m.verified and m.trace_count == match.trace_count
    assert m.evidence[0].span_id == sid and m.source == "llm" and m.detector == "llm"


def test_unknown_span_is_dropped_not_fatal(tau_store):
    tid, sid, _ = _payment_evidence(tau_store)
    ev = [{"trace_id": tid, "span_id": "00000000000000aa"}, {"trace_id": tid, "span_id": sid}]
    out = Grounder(tau_store).check([_mode(evidence=ev, signature=PAYMENT)], 1)
    assert [e.span_id for e in out.accepted[0].evidence] == [sid]
    assert any("00000000000000aa" in n for n in out.notes)


def test_only_unknown_spans_leaves_no_evidence(tau_store):
    tid, _, _ = _payment_evidence(tau_store)
    out = Grounder(tau_store).check([_mode(evidence=[{"trace_id": tid, "span_id": "00000000000000aa"}],
                                           signature=PAYMENT)], 1)
    assert out.rejected[0].reason.startswith("no evidence left")


def test_signature_that_misses_its_evidence(tau_store):
    _, _, match = _payment_evidence(tau_store)
    elsewhere = next(t for t in tau_store.trace_ids if t not in match.traces)
    out = Grounder(tau_store).check([_mode(evidence=[{"trace_id": elsewhere}], signature=PAYMENT)], 2)
    (r,) = out.rejected
    assert r.round == 2 and r.reason.startswith("signature misses its evidence")


def test_invalid_signature_is_rejected_with_the_reason(tau_store):
    tid, _, _ = _payment_evidence(tau_store)
    out = Grounder(tau_store).check([_mode(evidence=[{"trace_id": tid}], signature={"regex": "(?=lookahead)x"})], 1)
    assert out.rejected[0].reason.startswith("invalid signature:")


def test_unsigned_mode_is_unverified_but_checked(tau_store):
    tid, _, _ = _payment_evidence(tau_store)
    out = Grounder(tau_store).check([
        _mode(title="Promises a refund without calling issue_refund", evidence=[{"trace_id": tid}]),
        _mode(title="unsigned with a bad id", evidence=[{"trace_id": "f" * 32}]),
    ], 1)
    (m,) = out.accepted
    assert not m.verified and m.signature is None and m.id.startswith("fm-")
    assert out.rejected[0].reason.startswith("unknown trace id")
    msg = rejection_message(out.rejected, out.accepted)
    assert "- unsigned with a bad id: unknown trace id" in msg and "1 accepted" in msg


def test_model_text_in_reasons_and_notes_is_cleaned(tau_store):
    tid, sid, _ = _payment_evidence(tau_store)
    secret = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4"
    out = Grounder(tau_store).check([
        _mode(title="a", evidence=[{"trace_id": f"\x1b[2J{secret}"}]),
        _mode(title=f"b\x1b[31m {secret}", evidence=[{"trace_id": tid, "span_id": sid},
                                                       {"trace_id": tid, "span_id": f"\x07{secret}"}],
              signature=PAYMENT),
    ], 1)
    assert "unknown trace id" in out.rejected[0].reason and len(out.notes) == 1
    for text in (out.rejected[0].reason, out.notes[0]):
        assert "\x1b" not in text and "\x07" not in text and secret not in text
