"""Customers ask for prices; the answers must match the catalog."""

import pytest
from price_agent import CATALOG, ask


@pytest.mark.parametrize("item", ["mug", "poster", "hoodie"])
def test_price_comes_from_the_catalog(item):
    assert ask(item) == f"A {item} costs ${CATALOG[item]:.2f}."


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_gift_card_price(attempt):
    assert ask("gift card") == "A gift card costs $20.00."
