"""The support agent's tools over an in-memory order book (reset per test by a fixture).

Planted defect: ``lookup_order`` does not understand legacy order ids (``LEG-1234``),
which still appear in old customer emails — a tool error that recurs across tests.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from agents import function_tool

_SEED: dict[str, dict[str, Any]] = {
    "A100": {"status": "shipped", "total": 42.50, "address": "1 Elm St, Springfield", "carrier": "UPS"},
    "A101": {"status": "processing", "total": 19.99, "address": "9 Oak Ave, Shelbyville", "carrier": None},
    "A102": {"status": "delivered", "total": 120.00, "address": "3 Pine Rd, Ogdenville", "carrier": "DHL"},
    "A103": {"status": "shipped", "total": 64.00, "address": "77 Birch Ln, Capital City", "carrier": "FedEx"},
    "A104": {"status": "processing", "total": 8.75, "address": "5 Cedar Ct, North Haverbrook", "carrier": None},
    "A105": {"status": "delivered", "total": 250.00, "address": "12 Maple Dr, Springfield", "carrier": "UPS"},
    "LEG-2041": {"status": "delivered", "total": 33.00, "address": "8 Ash St, Springfield", "carrier": "USPS"},
    "LEG-3310": {"status": "shipped", "total": 71.20, "address": "2 Fir Pl, Shelbyville", "carrier": "USPS"},
    "LEG-5120": {"status": "processing", "total": 15.00, "address": "4 Yew Way, Ogdenville", "carrier": None},
    "LEG-7777": {"status": "delivered", "total": 99.99, "address": "6 Elm St, Springfield", "carrier": "UPS"},
}
ORDERS: dict[str, dict[str, Any]] = {}
REFUNDS: list[tuple[str, float]] = []


def reset() -> None:
    """Fresh order book (called before every test)."""
    ORDERS.clear()
    ORDERS.update(copy.deepcopy(_SEED))
    REFUNDS.clear()


reset()


def tool_error_message(ctx: Any, error: Exception) -> str:
    """Tell the model what went wrong (and keep the detail in the trace, unlike the SDK default)."""
    return f"Tool error: {type(error).__name__}: {error}"


@function_tool(failure_error_function=tool_error_message)
def lookup_order(order_id: str) -> str:
    """Look up an order by id: status, total, shipping address and carrier."""
    if order_id.startswith("LEG-"):
        # The orders API only accepts the current id scheme; legacy ids blow up here.
        raise ValueError(f"unsupported order id format: {order_id!r} (expected A###)")
    order = ORDERS.get(order_id)
    if order is None:
        raise KeyError(f"no such order: {order_id}")
    return json.dumps({"order_id": order_id, **order})


@function_tool(failure_error_function=tool_error_message)
def refund(order_id: str, amount: float) -> str:
    """Refund part or all of an order's total."""
    order = ORDERS[order_id]
    if amount > order["total"]:
        return f"refused: amount {amount:.2f} exceeds order total {order['total']:.2f}"
    REFUNDS.append((order_id, amount))
    return f"refunded {amount:.2f} on {order_id}"


@function_tool(failure_error_function=tool_error_message)
def update_address(order_id: str, address: str) -> str:
    """Change the shipping address of an order that has not been delivered yet."""
    order = ORDERS[order_id]
    if order["status"] == "delivered":
        return json.dumps({"ok": False, "reason": "order already delivered"})
    if "apt" in address.lower():
        # Planted defect: apartment addresses sit in a validation queue forever.
        return json.dumps({"ok": False, "reason": "pending_validation", "hint": "call update_address again to confirm"})
    order["address"] = address
    return json.dumps({"ok": True, "address": address})


@function_tool(failure_error_function=tool_error_message)
def track_shipment(order_id: str) -> str:
    """Where a shipped order is, according to its carrier."""
    order = ORDERS[order_id]
    if not order["carrier"]:
        return "not handed to a carrier yet"
    return f"{order['carrier']}: in transit, expected in 2 days"


ALL_TOOLS = [lookup_order, refund, update_address, track_shipment]
