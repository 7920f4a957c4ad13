"""Error templating masks what varies and nothing else; it cannot depend on input order."""

from __future__ import annotations

import random

from engine.analysis.templates import template_of


def test_masks_variable_parts() -> None:
    assert template_of("Error: flight HAT030 not available on date 2024-05-13") == (
        "Error: flight <*> not available on date <*>"
    )
    assert template_of("Error: payment amount does not add up, total price is 375, but paid 299") == (
        "Error: payment amount does not add up, total price is <*>, but paid <*>"
    )
    assert template_of("PermissionError: access denied to /etc/secret/key.pem") == (
        "PermissionError: access denied to <PATH>"
    )
    assert template_of("KeyError: 'user_id'") == "KeyError: '<*>'"
    assert template_of('not found: "abc def"') == 'not found: "<*>"'
    assert template_of("GET https://api.example.com/v1/x?id=3 failed") == "GET <URL> failed"
    assert template_of("user 550e8400-e29b-41d4-a716-446655440000 missing") == "user <UUID> missing"
    assert template_of("mail bob@example.com bounced") == "mail <EMAIL> bounced"


def test_keeps_the_words_that_identify_the_family() -> None:
    assert template_of("Error: gift card balance is not enough") == "Error: gift card balance is not enough"
    assert template_of("Error: payment gateway timeout after 30s") == "Error: payment gateway timeout after <*>"
    assert template_of("ValueError: bad\n  Traceback line 2") == "ValueError: bad"
    assert template_of("") == "" and template_of(None) == ""


def test_same_family_same_template_regardless_of_order() -> None:
    msgs = [f"Error: not enough seats on flight HAT{n:03d}" for n in range(40)] + [
        f"Error: payment method certificate_{n} not found" for n in range(1000, 1040)
    ]
    first = {m: template_of(m) for m in msgs}
    rng = random.Random(3)
    for _ in range(3):
        shuffled = msgs[:]
        rng.shuffle(shuffled)
        assert {m: template_of(m) for m in shuffled} == first
    assert len(set(first.values())) == 2


def test_long_messages_are_capped() -> None:
    t = template_of("Error: " + "word " * 200)
    assert len(t) <= 161 and t.endswith("…")
