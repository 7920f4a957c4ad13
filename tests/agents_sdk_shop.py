"""The Agents SDK "shop" agent for inner pytester projects: the real ``Agent`` on ``OpenAIChatCompletionsModel``
over the ``openai`` client, meant for ``fake_chat_server.price_script``.

Planted: ``get_price`` fails for anything but apple and pear (the error goes back to the model as the tool's
result), and the ``no_forbidden`` input guardrail trips on "forbidden". Written into the inner project as a file.
"""

from agents import Agent, GuardrailFunctionOutput, OpenAIChatCompletionsModel, function_tool, input_guardrail
from openai import AsyncOpenAI


def tool_error(ctx, error):
    return f"error: {error}"


@function_tool(failure_error_function=tool_error)
def get_price(item: str) -> str:
    """Price of an item."""
    return {"apple": "1.20", "pear": "0.90"}[item]


@input_guardrail
def no_forbidden(ctx, agent, message):
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="forbidden" in str(message))


def shop(base_url):
    model = OpenAIChatCompletionsModel(model="fake-gpt",
                                       openai_client=AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0))
    return Agent(name="shop", instructions="Quote prices.", tools=[get_price], model=model,
                 input_guardrails=[no_forbidden])
