"""Cancellations: the scripted model reaches for a tool it was never given."""

from support_agent import run_support


def test_cancel_processing_order():
    reply = run_support("Please cancel order A101, I ordered it by mistake.")
    assert "cancel" in reply.text.lower()


def test_cancel_second_processing_order():
    reply = run_support("Cancel A104 please")
    assert "cancel" in reply.text.lower()


def test_cancel_shipped_order():
    reply = run_support("Can I still cancel A103?")
    assert reply.text


def test_legacy_order_before_cancelling():
    reply = run_support("Is LEG-5120 still processing? I may want to change it.")
    assert "processing" in reply.text
