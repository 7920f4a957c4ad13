"""Findings in words, shared by the terminal summary (``engine.analysis.summary``) and the publishers.

A neutral read of the findings so the terminal, ``report.md`` and ``report.html`` say the same
thing the same way ("12 of 26 tests failed", "in 3 of 12 failing tests and 0 of 14 passing").
"""

from __future__ import annotations

from engine.findings import DatasetSummary, FailureMode


def plural(n: int, word: str, plural_form: str | None = None) -> str:
    """``1 test``, ``2 tests``."""
    return f"{n} {word if n == 1 else (plural_form or word + 's')}"


def outcome_phrase(d: DatasetSummary) -> str:
    """"12 of 26 tests failed" (or traces, when no test outcomes are known)."""
    if d.run_unit != "tests" or not d.tests:
        return f"{plural(d.traces, 'trace')} analysed (no test outcomes)"
    if not d.failing_tests:
        return f"all {plural(d.tests, 'test')} passed" if d.passing_tests == d.tests else f"0 of {d.tests} tests failed"
    return f"{d.failing_tests} of {plural(d.tests, 'test')} failed"


def in_words(m: FailureMode, d: DatasetSummary) -> str:
    """Statistics in words: "in 3 of 12 failing tests and 0 of 14 passing"."""
    if d.run_unit != "tests" or not d.tests:
        return f"in {m.run_count} of {plural(d.runs, 'trace')}"
    e = m.enrichment
    if e is not None:
        failing, f_total, passing, p_total = e.failing_with, e.failing_total, e.passing_with, e.passing_total
    else:
        failing, f_total, p_total = m.failing_test_count, d.failing_tests, d.passing_tests
        if d.failing_tests + d.passing_tests != d.tests:  # outcomes unknown for some tests
            return f"in {failing} of {f_total} failing tests ({m.test_count} of {d.tests} tests in all)"
        passing = max(m.test_count - m.failing_test_count, 0)
    if not f_total:
        return f"in {passing} of {p_total} tests, all passing"
    if not p_total:
        return f"in {failing} of {f_total} failing tests (no test passed)"
    return f"in {failing} of {f_total} failing tests and {passing} of {p_total} passing"
