"""Signatures: normalization, stable ids, validation messages for the model, the library file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.findings import Signature
from engine.signatures import (
    LibraryEntry,
    load_library,
    load_library_entries,
    normalize_signature,
    save_library,
    signature_id,
    validate_signature,
)


def test_same_predicate_spelled_differently_is_one_id() -> None:
    a = Signature(category=" Tool ", tool_name="Book_Reservation", field="error", regex="not enough")
    b = {"category": "tool", "tool_name": "book_reservation ", "field": "ERROR", "regex": "not enough"}
    assert normalize_signature(a) == normalize_signature(b)
    assert signature_id(a) == signature_id(b)
    assert signature_id(a).startswith("fm-") and len(signature_id(a)) == 15


def test_field_is_irrelevant_without_regex_and_regex_is_kept_verbatim() -> None:
    assert signature_id({"tool_name": "x", "field": "error"}) == signature_id({"tool_name": "x"})
    assert signature_id({"regex": "Time out"}) != signature_id({"regex": "time out"})
    assert normalize_signature({"regex": " a b "}).regex == " a b "
    assert normalize_signature({"tool_name": "x", "regex": ""}).regex is None


def test_different_predicates_have_different_ids() -> None:
    ids = {
        signature_id(s)
        for s in (
            {"tool_name": "a"},
            {"span_name": "a"},
            {"category": "tool", "tool_name": "a"},
            {"tool_name": "a", "regex": "boom", "field": "error"},
            {"tool_name": "a", "regex": "boom", "field": "output"},
        )
    }
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("sig", "expect"),
    [
        ({}, "empty signature"),
        ({"field": "error"}, "empty signature"),
        ({"regex": "   "}, "empty signature"),
        ({"regex": "(unclosed"}, "invalid regex"),
        ({"regex": "refund(?=ed)"}, "no lookarounds"),
        ({"regex": r"(a)\1"}, "invalid regex"),
        ({"regex": ".*"}, "empty string"),
        ({"tool_name": "x", "regex": "a|"}, "empty string"),
        ({"regex": "err"}, "too short"),
        ({"regex": "x" * 600}, "keep it under"),
        ({"category": "database"}, "unknown category"),
        ({"tool_name": "x", "field": "stdout", "regex": "boom"}, "field must be one of"),
        ({"regex": 42}, "regex must be a string"),
    ],
)
def test_validation_tells_the_model_what_to_fix(sig: dict, expect: str) -> None:
    problem = validate_signature(sig)
    assert problem is not None and expect in problem
    assert "\n" not in problem


def test_valid_signatures_pass() -> None:
    assert validate_signature({"tool_name": "x"}) is None
    assert validate_signature({"category": "tool", "field": "error", "regex": "(?i)timeout"}) is None
    assert validate_signature(Signature(regex=r"not enough seats on flight HAT\d+")) is None
    assert validate_signature({"tool_name": "x", "regex": "ab"}) is None  # short is fine when narrowed


def test_library_round_trip_atomic_and_dedup(tmp_path: Path) -> None:
    path = tmp_path / ".halo" / "signatures.json"
    e = LibraryEntry(Signature(tool_name="A", regex="boom", field="error"), title="A blows up",
                     category="tool_error", description="why", suggested_fix="fix", confidence=0.7)
    save_library(path, [e, Signature(tool_name="a", regex="boom", field="error"), Signature(span_name="s")])
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and len(data["signatures"]) == 2
    assert not [p for p in path.parent.iterdir() if p.name != "signatures.json"]  # no temp file left
    sigs = load_library(path)
    assert {signature_id(s) for s in sigs} == {e.id, signature_id({"span_name": "s"})}
    entries, problems = load_library_entries(path)
    got = next(x for x in entries if x.id == e.id)
    assert (got.title, got.category, got.description, got.suggested_fix, got.confidence) == (
        "A blows up", "tool_error", "why", "fix", 0.7)
    assert problems == []


def test_library_skips_bad_entries_and_refuses_non_libraries(tmp_path: Path) -> None:
    assert load_library(tmp_path / "missing.json") == []
    path = tmp_path / "signatures.json"
    path.write_text(json.dumps({"signatures": [{"signature": {"regex": "(bad"}}, {"signature": {"tool_name": "ok"}},
                                               "junk"]}))
    entries, problems = load_library_entries(path)
    assert [e.signature.tool_name for e in entries] == ["ok"]
    assert len(problems) == 2 and "#1" in problems[0] and "invalid regex" in problems[0]
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a signature library"):
        load_library(path)


def test_library_texts_are_cleaned_the_predicate_is_not(tmp_path: Path) -> None:
    path = tmp_path / "signatures.json"
    sig = Signature(tool_name="s3", field="error", regex="AccessDenied")
    save_library(path, [LibraryEntry(sig, title="Denied\n\x1b[31mred", description="key AKIAIOSFODNN7EXAMPLE leaked")])
    (entry,) = json.loads(path.read_text())["signatures"]
    assert entry["title"] == "Denied red" and "AKIA" not in entry["description"] and "\x1b" not in path.read_text()
    assert entry["signature"]["regex"] == "AccessDenied" and entry["id"] == signature_id(sig)
