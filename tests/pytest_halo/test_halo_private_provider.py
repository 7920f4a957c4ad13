"""An instrumentation given a private ``TracerProvider`` sends its spans past halo: the hint must say why."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FAKE_CHAT_SERVER

pytest.importorskip("openinference.instrumentation.openai")

CONFTEST = (
    "from openinference.instrumentation.openai import OpenAIInstrumentor\n"
    "from opentelemetry.sdk.trace import TracerProvider\n\n"
    "OpenAIInstrumentor().instrument(tracer_provider=TracerProvider())  # private: not the global provider\n"
    + FAKE_CHAT_SERVER
)

TESTS = '''
from openai import OpenAI


def test_chat(base_url):
    client = OpenAI(base_url=base_url, api_key="offline", max_retries=0)
    reply = client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "price of apple"}])
    assert reply.choices[0].message.tool_calls
'''


def test_private_tracer_provider_hint_says_why_and_what_to_do(pytester: pytest.Pytester, run_halo: Any) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_chat=TESTS)
    run = run_halo("--halo", "--halo-skip-analysis")
    assert run.ret == 0, run.output()
    assert run.spans == []  # the case: the instrumentation ran, but into a provider halo never sees
    out = run.output()
    assert "halo: no spans captured" in out
    assert "own TracerProvider" in out and "drop tracer_provider= or pass trace.get_tracer_provider()" in out
