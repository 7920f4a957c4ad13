"""Build and run the support agent (one ``Runner.run_sync`` per customer message)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents import Agent, Runner
from agents.items import MessageOutputItem, ToolCallItem

from support_agent.policy import support_policy
from support_agent.scripted_model import ScriptedModel
from support_agent.tools import ALL_TOOLS

INSTRUCTIONS = (
    "You are the support agent of Halo Shop. Look orders up before acting on them, "
    "refund only what the customer asks for, and never invent order data."
)
MAX_TURNS = 6


@dataclass
class SupportReply:
    """What the customer sees, plus what the agent did to get there."""

    text: str
    refused: bool = False
    tools_called: list[str] = field(default_factory=list)


def build_agent() -> Agent:
    return Agent(name="support", instructions=INSTRUCTIONS, tools=list(ALL_TOOLS),
                 model=ScriptedModel(support_policy))


def run_support(message: str, max_turns: int = MAX_TURNS) -> SupportReply:
    result = Runner.run_sync(build_agent(), message, max_turns=max_turns)
    tools = [item.raw_item.name for item in result.new_items if isinstance(item, ToolCallItem)]
    refused = False
    for item in result.new_items:
        if isinstance(item, MessageOutputItem):
            refused = refused or any(getattr(p, "type", "") == "refusal" for p in item.raw_item.content)
    text = result.final_output if isinstance(result.final_output, str) else ""
    return SupportReply(text=text or "", refused=refused, tools_called=tools)
