"""Order status and tracking questions."""

from support_agent import run_support


def test_shipped_order_reports_carrier():
    reply = run_support("Where is my order A100?")
    assert "shipped" in reply.text
    assert "UPS" in reply.text


def test_processing_order():
    reply = run_support("What's the status of A101?")
    assert "processing" in reply.text


def test_delivered_order():
    reply = run_support("Has A102 arrived yet?")
    assert "delivered" in reply.text


def test_shipped_order_with_fedex():
    reply = run_support("Where is A103 right now?")
    assert "FedEx" in reply.text


def test_order_not_yet_with_carrier():
    reply = run_support("Status of A104 please")
    assert "processing" in reply.text
    assert reply.tools_called == ["lookup_order"]


def test_asks_for_order_number():
    reply = run_support("Where is my package?")
    assert "order number" in reply.text


def test_legacy_order_from_old_email():
    reply = run_support("Where is my order LEG-2041 from last year?")
    assert "delivered" in reply.text


def test_legacy_order_status():
    reply = run_support("Can you check LEG-3310 for me?")
    assert "shipped" in reply.text
