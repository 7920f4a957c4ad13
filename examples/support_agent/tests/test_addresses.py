"""Shipping address changes."""

from support_agent import run_support, tools


def test_change_address_of_processing_order():
    reply = run_support("Please change the address of A101 to 4 Main St, Springfield.")
    assert "4 Main St" in reply.text
    assert tools.ORDERS["A101"]["address"] == "4 Main St, Springfield"


def test_change_address_second_order():
    reply = run_support("Update the address for A104 to 10 Side Rd, Ogdenville")
    assert "10 Side Rd" in reply.text
    assert tools.ORDERS["A104"]["address"] == "10 Side Rd, Ogdenville"


def test_change_address_of_shipped_order():
    reply = run_support("Change the shipping address of A103 to 9 Lake View, Capital City")
    assert "9 Lake View" in reply.text


def test_cannot_change_delivered_order():
    reply = run_support("Change the address of A102 to 1 New Rd")
    assert "already delivered" in reply.text


def test_apartment_address():
    reply = run_support("Change the address of A101 to 4 Main St Apt 2, Springfield")
    assert "Apt 2" in reply.text


def test_apartment_address_other_order():
    reply = run_support("Please change the address for A104 to 22 High St Apt 5B")
    assert "22 High St Apt 5B" in reply.text
    assert tools.ORDERS["A104"]["address"] == "22 High St Apt 5B"


def test_apartment_address_shipped_order():
    reply = run_support("New address for A103: please move it to 8 Hill Rd apt 1")
    assert "8 Hill Rd" in reply.text
