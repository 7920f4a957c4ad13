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
    """What the analysis needs from the hooks, called once the session has loaded every conftest."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def detectors(self) -> list[Any]:
        out: list[Any] = []
        for result in self.config.hook.pytest_halo_detectors(config=self.config):
            if result is None:
                continue
            if isinstance(result, list | tuple):
                out.extend(result)
            else:
                out.append(result)
        return out

    def findings_hooks(self) -> list[tuple[str, Callable[[Any], object]]]:
        if not self.config.pluginmanager.hook.pytest_halo_findings.get_hookimpls():
            return []

        def call(findings: Any) -> None:
            self.config.hook.pytest_halo_findings(config=self.config, findings=findings)

        return [("pytest_halo_findings", call)]
