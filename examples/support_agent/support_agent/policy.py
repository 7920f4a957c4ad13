"""The scripted "LLM" behind the support agent: reads the conversation, picks the next step.

It behaves like a decent model most of the time and, on purpose, like a flawed one in a
few recurring situations, so that ``pytest --halo`` has systemic failure modes to find:

* chargeback requests → it refuses instead of processing the refund;
* cancellation requests → it calls ``cancel_order``, a tool it was never offered;
* apartment addresses → ``update_address`` says "pending_validation" and the model calls
  it again with identical arguments until the turn limit (a retry loop).
"""

from __future__ import annotations

import json
import re
from typing import Any

from support_agent.scripted_model import Action, Call, Say

ORDER_ID = re.compile(r"\b(A\d{3}|LEG-\d{4})\b")
AMOUNT = re.compile(r"\$(\d+(?:\.\d+)?)")
ADDRESS = re.compile(r"\bto (.+?)\.?$")
TOOL_FAILED = "tool error:"


def _request(items: list[dict[str, Any]]) -> str:
    for item in items:
        if item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _steps(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(tool name, output text) for each tool call already answered, in order."""
    names = {i.get("call_id"): i.get("name") for i in items if i.get("type") == "function_call"}
    out = []
    for i in items:
        if i.get("type") == "function_call_output":
            raw = i.get("output")
            out.append((str(names.get(i.get("call_id"), "?")), raw if isinstance(raw, str) else json.dumps(raw)))
    return out


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def support_policy(items: list[dict[str, Any]], offered: list[str]) -> Action:
    request = _request(items)
    low = request.lower()
    steps = _steps(items)
    last = steps[-1][1] if steps else ""
    m = ORDER_ID.search(request)
    order_id = m.group(1) if m else None
    if order_id is None:
        return Say("Could you tell me your order number? It looks like A123.")

    if "chargeback" in low:
        return Say("I'm sorry, but I can't help with chargebacks or disputed payments.", refusal=True)

    if "cancel" in low and not steps:
        return Call("cancel_order", {"order_id": order_id})  # never offered: the SDK rejects it

    if "address" in low:
        am = ADDRESS.search(request)
        address = am.group(1).strip() if am else ""
        if not steps or _json(last).get("reason") == "pending_validation":
            return Call("update_address", {"order_id": order_id, "address": address})
        result = _json(last)
        if result.get("ok"):
            return Say(f"Done: order {order_id} will now ship to {result['address']}.")
        return Say(f"Sorry, I couldn't change the address of {order_id}: {result.get('reason', 'unknown error')}.")

    if not steps:
        return Call("lookup_order", {"order_id": order_id})
    if TOOL_FAILED in steps[0][1].lower():
        return Say(f"Sorry, I couldn't find order {order_id}. Could you double-check the number?")
    order = _json(steps[0][1])

    if "refund" in low:
        if len(steps) == 1:
            am = AMOUNT.search(request)
            amount = float(am.group(1)) if am else float(order.get("total", 0))
            return Call("refund", {"order_id": order_id, "amount": amount})
        return Say(f"All set: {last}.")

    if order.get("status") == "shipped" and len(steps) == 1 and "track_shipment" in offered:
        return Call("track_shipment", {"order_id": order_id})
    extra = f" Tracking: {last}." if len(steps) > 1 else ""
    return Say(f"Order {order_id} is {order.get('status', 'unknown')}.{extra}")
