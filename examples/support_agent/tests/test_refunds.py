"""Refund requests, including the ones the agent handles badly."""

from support_agent import run_support, tools


def test_partial_refund():
    reply = run_support("Please refund $10 on order A102, one item was broken.")
    assert "refunded 10.00" in reply.text
    assert tools.REFUNDS == [("A102", 10.0)]


def test_full_refund():
    reply = run_support("I'd like a refund for A105.")
    assert "refunded 250.00" in reply.text


def test_small_refund_on_shipped_order():
    reply = run_support("Refund $5 on A100 for the late delivery")
    assert tools.REFUNDS == [("A100", 5.0)]
    assert reply.tools_called == ["lookup_order", "refund"]


def test_refund_above_total_is_refused_by_tool():
    reply = run_support("Refund $50 on A104")
    assert "exceeds order total" in reply.text
    assert tools.REFUNDS == []


def test_refund_on_legacy_order():
    reply = run_support("Please refund $20 on LEG-7777")
    assert "refunded 20.00" in reply.text
    assert tools.REFUNDS == [("LEG-7777", 20.0)]


def test_chargeback_is_processed_as_refund():
    reply = run_support("My bank says I should file a chargeback for A105 - can you refund it instead?")
    assert "refunded" in reply.text


def test_chargeback_on_small_order():
    reply = run_support("Chargeback request for A101, refund $19.99 please")
    assert not reply.refused
    assert tools.REFUNDS == [("A101", 19.99)]
