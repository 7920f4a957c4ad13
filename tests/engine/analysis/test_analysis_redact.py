"""Secrets never reach findings or reports."""

from __future__ import annotations

from engine.sanitize import REDACTED, excerpt, redact


def test_redacts_known_secret_shapes() -> None:
    text = (
        "key sk-proj-abcdefghijklmnopqrstuvwxyz123456 and Authorization: Bearer abc.def-ghi_jkl123456 "
        "aws AKIAIOSFODNN7EXAMPLE jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N "
        "db postgres://admin:hunter2@db.internal:5432/app password=letmein123 ghp_abcdefghijklmnopqrstuvwxyz0123"
    )
    out = redact(text)
    for secret in ("sk-proj-abc", "abc.def-ghi_jkl123456", "AKIAIOSFODNN7EXAMPLE", "eyJhbGci", "hunter2",
                   "letmein123", "ghp_abc"):
        assert secret not in out
    assert "postgres://admin:" + REDACTED + "@db.internal" in out
    assert out.count(REDACTED) >= 7


def test_leaves_ordinary_text_alone() -> None:
    text = "Error: flight HAT030 not available on date 2024-05-13 (task sk-8)"
    assert redact(text) == text


def test_excerpt_redacts_before_capping() -> None:
    out = excerpt("x" * 30 + " sk-" + "a" * 40, 40)
    assert "aaaa" not in out and len(out) <= 40
