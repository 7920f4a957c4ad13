"""A user-defined detector: the agent quoted a price in a run where it never called ``get_price``."""

from __future__ import annotations

import re

from engine.analysis.detectors.api import Hit, TraceState

PRICE = re.compile(r"\$\d+(?:\.\d{2})?")


class QuotedPriceWithoutLookup:
    name = "price_without_lookup"

    def on_run(self, run: TraceState) -> list[Hit]:
        text = run.final_output or ""
        if not PRICE.search(text) or run.called("get_price"):
            return []
        return [Hit(
            detector=self.name,
            key="get_price",  # one failure mode, however many runs show it
            title="Agent quotes a price without calling `get_price`",
            category="ungrounded_answer",
            span_id=run.final_span_id,
            example=text,
            suggested_fix="Tell the agent to call get_price before stating any price; never answer from memory.",
        )]
