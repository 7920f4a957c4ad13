"""pytest-halo's hook specifications: user detectors and a look at the findings before the gate.

Implement them in a ``conftest.py`` or a plugin::

    def pytest_halo_detectors(config):
        return [QuotedPriceWithoutLookup()]

    def pytest_halo_findings(config, findings):
        findings.notes.append("reviewed by the support team's hook")

A detector is an object with a ``name`` and ``on_span(span, run)`` and/or ``on_run(run)``
returning ``Hit``s (``engine.analysis.detectors.api``; see ``docs/detectors.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_halo_detectors(config: Any) -> list[Any] | None:  # type: ignore[empty-body]
    """Return extra detectors for this run's analysis (every implementation's lists are joined)."""


@hookspec
def pytest_halo_findings(config: Any, findings: Any) -> None:
    """Read or annotate the findings before the gate; removing anything is undone (and noted)."""


class HaloHooks:
    """What the analysis needs from the hooks: user detectors (checked once, before the first test
    runs) and the findings hook."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self._detectors: list[Any] | None = None

    def detectors(self) -> list[Any]:
        """Installed ``pytest_halo.detectors`` entry points plus every ``pytest_halo_detectors`` result,
        as ``halo analyze`` loads them; collected once (``check`` collects them early)."""
        if self._detectors is None:
            from engine.analysis.detectors.loading import load_entry_points

            out: list[Any] = list(load_entry_points())
            for result in self.config.hook.pytest_halo_detectors(config=self.config):
                if result is None:
                    continue
                if isinstance(result, list | tuple):
                    out.extend(result)
                else:
                    out.append(result)
            self._detectors = out
        return self._detectors

    def check(self) -> None:
        """Collect and check the detectors now, so a bad one stops the run before any test (exit 4)
        instead of costing the analysis after all of them."""
        import pytest

        from engine.analysis.detectors.api import DetectorSet
        from engine.analysis.detectors.loading import DetectorLoadError

        self._detectors = None  # conftests collected since an earlier call may add detectors
        try:
            DetectorSet.of(self.detectors())
        except (DetectorLoadError, TypeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise pytest.UsageError(f"halo: bad detector: {first}") from None

    def findings_hooks(self) -> list[tuple[str, Callable[[Any], object]]]:
        if not self.config.pluginmanager.hook.pytest_halo_findings.get_hookimpls():
            return []

        def call(findings: Any) -> None:
            self.config.hook.pytest_halo_findings(config=self.config, findings=findings)

        return [("pytest_halo_findings", call)]
