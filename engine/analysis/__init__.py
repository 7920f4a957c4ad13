"""Deterministic failure-mode analysis: detectors, findings, baseline gate."""
