"""User detectors are checked when registered: a built-in's name is refused like a duplicate."""

from __future__ import annotations

import pytest

from engine.analysis.detectors.api import DetectorSet, TraceState
from engine.analysis.detectors.builtin import BUILTIN_NAMES


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def on_run(self, run: TraceState) -> None:
        return None


@pytest.mark.parametrize("name", sorted(BUILTIN_NAMES))
def test_a_builtin_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=f"detector name '{name}' is a built-in detector's"):
        DetectorSet.of([Named(name)])


def test_other_names_register() -> None:
    assert [d.name for d in DetectorSet.of([Named("price_without_lookup")]).detectors] == ["price_without_lookup"]
