"""``pytest --halo`` over the real ``opentelemetry-instrumentation-openai-v2`` (GenAI conventions, no content).

Its default captures no message content, so every chat span's output is unknown; each run used to
end in "Run ends with an empty final answer" (100% of runs).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import FAKE_CHAT_SERVER

pytest.importorskip("opentelemetry.instrumentation.openai_v2")

CONFTEST = "from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor\n\nOpenAIInstrumentor().instrument()\n" + FAKE_CHAT_SERVER

TESTS = '''
import json

import pytest
from openai import OpenAI

TOOLS = [{"type": "function", "function": {"name": "get_price", "description": "Price of an item",
          "parameters": {"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]}}}]


@pytest.mark.parametrize("item", ["apple", "pear", "plum", "fig"])
def test_price(base_url, item):
    client = OpenAI(base_url=base_url, api_key="offline", max_retries=0)
    messages = [{"role": "user", "content": f"what does it cost: {item}"}]
    reply = client.chat.completions.create(model="fake-gpt", messages=messages, tools=TOOLS)
    call = reply.choices[0].message.tool_calls[0]
    messages += [reply.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "1.20"}]
    answer = client.chat.completions.create(model="fake-gpt", messages=messages, tools=TOOLS)
    assert answer.choices[0].message.content == "The price is 1.20"
'''


def test_genai_spans_without_content_are_not_empty_answers(pytester: pytest.Pytester, run_halo: Any) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_shop=TESTS)
    run = run_halo("--halo")
    run.result.assert_outcomes(passed=4)
    chats = [s for s in run.spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 8  # two chat calls per test, each with GenAI attributes and no content
    assert all(s["attributes"].get("gen_ai.response.finish_reasons") for s in chats)
    assert not any(k.startswith(("gen_ai.output", "gen_ai.completion", "llm.output")) for s in chats for k in s["attributes"])
    findings = json.loads((run.dir / "findings.json").read_text())
    detectors = {m["detector"] for m in findings["failure_modes"]} | {o.get("detector") for o in findings["one_offs"]}
    assert "empty_final_output" not in detectors, findings["failure_modes"]
