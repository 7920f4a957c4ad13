"""Register the project's own detector with pytest-halo, and look at the findings before the gate."""

from __future__ import annotations

from detectors import QuotedPriceWithoutLookup


def pytest_halo_detectors(config):
    return [QuotedPriceWithoutLookup()]


def pytest_halo_findings(config, findings):
    ungrounded = [m for m in findings.failure_modes if m.detector == "price_without_lookup"]
    if ungrounded:
        findings.notes.append(f"pricing: {ungrounded[0].run_count} runs quoted a price without a lookup")
