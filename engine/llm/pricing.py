"""Prices (USD per 1M tokens) and context windows of common models; both overridable in settings.

Lookups try the full name first (an override may name ``anthropic/claude-3.5-sonnet`` exactly),
then the bare model after a provider prefix (``openai/gpt-4o-mini`` → ``gpt-4o-mini``), matching
the longest known prefix so dated snapshots and tags inherit their family's entry; a version
written with dots matches one written with dashes (``claude-3.5-sonnet`` = ``claude-3-5-sonnet``).
An unknown price means the run counts tokens only; an unknown context size falls back to 32k.

Kept free of pydantic: the pytest plugin parses ``--halo-price`` with ``parse_price`` while it
configures, before anything heavy is imported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

# (input, output) USD per 1M tokens, published list prices.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-haiku-4": (1.00, 5.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-pro": (1.25, 10.00),
    "deepseek-chat": (0.27, 1.10),
}

CONTEXT_TOKENS: dict[str, int] = {
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-5": 400_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "claude": 200_000,
    "gemini-2.5": 1_048_576,
    "deepseek": 64_000,
    "llama-3": 128_000,
    "qwen": 32_768,
}
DEFAULT_CONTEXT_TOKENS = 32_000


_VERSION_DOT = re.compile(r"(?<=\d)\.(?=\d)")


def _norm(name: str) -> str:
    return _VERSION_DOT.sub("-", name.strip().lower())


def _lookup(table: Mapping[str, object], model: str) -> object | None:
    """The entry for ``model``: exact full name, exact bare name, then the longest prefix of the bare name."""
    if not table:
        return None
    keys = {_norm(k): v for k, v in table.items()}
    full = _norm(model)
    bare = full.rsplit("/", 1)[-1]
    for name in (full, bare):
        if name in keys:
            return keys[name]
    best = max((k for k in keys if bare.startswith(k.rsplit("/", 1)[-1])), key=len, default=None)
    return keys[best] if best is not None else None


def _merged(table: Mapping[str, object], overrides: Mapping[str, object] | None) -> dict[str, object]:
    """The built-in table with the overrides on top (an override beats an entry of the same name, and an
    exact name beats a prefix whichever table holds it)."""
    return {**{_norm(k): v for k, v in table.items()}, **{_norm(k): v for k, v in (overrides or {}).items()}}


def price_of(model: str, overrides: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens, or None when unknown."""
    got = _lookup(_merged(PRICES, overrides), model)
    return (float(got[0]), float(got[1])) if isinstance(got, (tuple, list)) else None


def cost_of(model: str, tokens_in: int, tokens_out: int, overrides: Mapping[str, tuple[float, float]] | None = None) -> float | None:
    price = price_of(model, overrides)
    if price is None:
        return None
    return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000


def context_tokens_of(model: str, overrides: Mapping[str, int] | None = None) -> int:
    got = _lookup(_merged(CONTEXT_TOKENS, overrides), model)
    return int(got) if isinstance(got, int) else DEFAULT_CONTEXT_TOKENS


def parse_price(spec: str) -> tuple[str, tuple[float, float]]:
    """``MODEL=IN/OUT`` (USD per 1M input / output tokens) → (model, (in, out)); ``ValueError`` says what is wrong."""
    model, sep, values = str(spec).strip().rpartition("=")
    model = model.strip()
    ins, slash, outs = values.partition("/")
    if not sep or not model or not slash:
        raise ValueError(f"{spec!r}: expected MODEL=IN/OUT in USD per 1M tokens, e.g. gpt-4o=2.5/10")
    try:
        price = (float(ins), float(outs))
    except ValueError:
        raise ValueError(f"{spec!r}: IN and OUT must be numbers (USD per 1M tokens), e.g. gpt-4o=2.5/10") from None
    if not all(math.isfinite(p) and p >= 0 for p in price):
        raise ValueError(f"{spec!r}: prices must be finite and not negative")
    return model, price


def parse_prices(specs: Iterable[str] | str) -> dict[str, tuple[float, float]]:
    """Several ``MODEL=IN/OUT`` specs (a string is split on commas and newlines); the last one for a model wins."""
    items = re.split(r"[,\n]", specs) if isinstance(specs, str) else list(specs)
    out: dict[str, tuple[float, float]] = {}
    for item in items:
        if str(item).strip():
            model, price = parse_price(item)
            out[model] = price
    return out


def unpriced(models: Iterable[str], overrides: Mapping[str, tuple[float, float]] | None = None) -> list[str]:
    """The models among ``models`` with no known price (each once, in order)."""
    return [m for m in dict.fromkeys(models) if price_of(m, overrides) is None]


def budget_notice(settings: Any) -> str | None:
    """The one line to show at start when a dollar budget is set but a model of the run has no price."""
    if not settings.max_cost_usd:
        return None
    roles = [settings.root_model, settings.sub_model, settings.synth_model, settings.compact_model]
    missing = unpriced([m for m in roles if m], settings.prices)
    if not missing:
        return None
    return (f"max cost ${settings.max_cost_usd:g} cannot be enforced: no price known for {', '.join(missing)} "
            "(add one with --price / --halo-price MODEL=IN/OUT, USD per 1M tokens); their tokens are counted, "
            "not their cost")
