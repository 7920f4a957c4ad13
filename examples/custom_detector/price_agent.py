"""A tiny pricing assistant traced with pytest-halo's manual span API (no LLM, fully scripted).

Planted defect: for gift cards the "model" answers from memory — it quotes a price without
calling ``get_price``, and the remembered price is stale.
"""

from __future__ import annotations

from pytest_halo import trace_agent, trace_llm, trace_tool

CATALOG = {"mug": 12.0, "poster": 8.5, "hoodie": 45.0, "gift card": 20.0}
REMEMBERED = {"gift card": 25.0}  # what the model "knows" from training data


def get_price(item: str) -> float:
    with trace_tool("get_price") as span:
        span.set_input({"item": item})
        price = CATALOG[item]
        span.set_output(f"{price:.2f}")
        return price


def ask(item: str) -> str:
    """One customer question, "How much is a <item>?", answered by the scripted agent."""
    with trace_agent("pricing"):
        with trace_llm("plan", model="scripted-1") as llm:
            llm.offer_tool("get_price", {"type": "object", "properties": {"item": {"type": "string"}}})
            if item in REMEMBERED:
                answer = f"A {item} costs ${REMEMBERED[item]:.2f}."
                llm.set_output(answer)
                return answer
            llm.record_tool_call("get_price", {"item": item})
            llm.set_output("")
        price = get_price(item)
        with trace_llm("answer", model="scripted-1") as llm:
            answer = f"A {item} costs ${price:.2f}."
            llm.set_output(answer)
        return answer
