"""Prices (USD per 1M tokens) and context windows of common models; both overridable in settings.

Lookups match the longest known prefix of the model name after dropping a provider prefix
(``openai/gpt-4o-mini`` → ``gpt-4o-mini``), so dated snapshots inherit their family's entry.
An unknown price means the run counts tokens only; an unknown context size falls back to 32k.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def _bare(model: str) -> str:
    return model.rsplit("/", 1)[-1].lower()


def _lookup(table: Mapping[str, object], model: str) -> object | None:
    name = _bare(model)
    if name in table:
        return table[name]
    best = max((k for k in table if name.startswith(k.lower())), key=len, default=None)
    return table[best] if best is not None else None


def price_of(model: str, overrides: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens, or None when unknown."""
    if overrides:
        got = _lookup(overrides, model)
        if got is not None:
            return tuple(got)  # type: ignore[return-value, arg-type]
    got = _lookup(PRICES, model)
    return tuple(got) if got is not None else None  # type: ignore[return-value, arg-type]


def cost_of(model: str, tokens_in: int, tokens_out: int, overrides: Mapping[str, tuple[float, float]] | None = None) -> float | None:
    price = price_of(model, overrides)
    if price is None:
        return None
    return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000


def context_tokens_of(model: str, overrides: Mapping[str, int] | None = None) -> int:
    if overrides:
        got = _lookup(overrides, model)
        if got is not None:
            return int(got)  # type: ignore[call-overload]
    got = _lookup(CONTEXT_TOKENS, model)
    return int(got) if got is not None else DEFAULT_CONTEXT_TOKENS  # type: ignore[call-overload]
