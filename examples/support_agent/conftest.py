"""Keep the example offline and every test independent.

The Agents SDK's default trace processor uploads to the OpenAI backend; we drop it so the
example never talks to the network, even when OPENAI_API_KEY happens to be set.
``pytest --halo`` registers its own processor at the first test, after this runs.
"""

from __future__ import annotations

import pytest
from agents import set_trace_processors
from support_agent import tools

set_trace_processors([])


@pytest.fixture(autouse=True)
def fresh_orders() -> None:
    tools.reset()
