"""A small customer-support agent on the OpenAI Agents SDK, driven by a scripted (offline) model."""

from support_agent.agent import SupportReply, build_agent, run_support

__all__ = ["SupportReply", "build_agent", "run_support"]
