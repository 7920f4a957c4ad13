"""Tool-error titles carry the error, not the framework's wrapper; the mode's key and id keep the whole template."""

from __future__ import annotations

import json

import pytest
from spanbuilder import Run, flatten

from engine.analysis.detectors.tool_errors import headline
from engine.analysis.pipeline import analyze_spans
from engine.analysis.summary import MAX_TITLE
from engine.findings import mode_id

SDK = "Error running tool (non-fatal): unsupported order id format: '{}' (expected A###)"


def test_agents_sdk_wrapper_leaves_the_title_and_stays_in_the_key() -> None:
    runs = []
    for i in range(6):
        r = Run(i, nodeid=f"tests/test_orders.py::test_{i}", outcome="failed" if i < 4 else "passed")
        if i < 4:
            r.tool("lookup_order", json.dumps({"order_id": f"LEG-{i}"}), error=SDK.format(f"LEG-{i}"))
        r.llm(text="Done.")
        runs.append(r)
    f = analyze_spans(flatten(runs))
    (m,) = [m for m in f.failure_modes if m.detector == "tool_error"]
    assert m.title == "Tool `lookup_order` fails: unsupported order id format: '<*>' (expected A###)"
    template = SDK.format("<*>")
    assert m.key == f"lookup_order\x1f{template}" and m.id == mode_id("tool_error", m.key)  # ids never move
    assert "unsupported order id format" in m.title[:MAX_TITLE]  # what the terminal's summary line shows


@pytest.mark.parametrize(("template", "title"), [
    ("Error running tool (non-fatal): boom", "boom"),
    ("Error running tool: boom", "boom"),
    ("Error running tool lookup_order: boom", "boom"),
    ("Error running tool (non-fatal): <*>", "Error running tool (non-fatal): <*>"),  # nothing would be left
    ("Error: flight <*> not available", "Error: flight <*> not available"),  # the tool's own words stay
    ("ValueError: Error running tool", "ValueError: Error running tool"),
])
def test_headline(template: str, title: str) -> None:
    assert headline(template) == title
