"""Deterministic failure-mode detectors: one module per family, no LLM.

Span detectors look at one normalized span as it streams by; trace detectors look at a
run's compact state once all its spans were seen. Both emit ``Hit``s into the run's
``TraceState``; the aggregator turns hits into failure-mode candidates.
"""
