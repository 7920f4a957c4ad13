"""Run-wide budgets (tokens, dollars, wall clock) and per-agent turn caps that never re-arm.

Budget accounting counts cached answers too, so a rerun from the cache unfolds exactly like
the run that filled it (the same wrap-up notes at the same points); ``Spend`` separately
records what was really paid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from engine.llm.pricing import cost_of

WRAP_UP_AT = 0.8


@dataclass
class Spend:
    """What requests that reached the provider cost, and what the cache saved."""

    requests: int = 0
    cached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True


@dataclass
class RunBudget:
    """Tokens, dollars and seconds for the whole run; ``level()`` is the largest share used."""

    max_tokens: int | None = None
    max_cost_usd: float | None = None
    timeout_s: float | None = None
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    tokens: int = 0
    cost_usd: float = 0.0
    unpriced_models: set[str] = field(default_factory=set)
    spend: Spend = field(default_factory=Spend)

    def record(self, model: str, tokens_in: int, tokens_out: int, *, cached: bool) -> None:
        """Count one answered request (cached ones count toward the budget, not toward spend)."""
        self.tokens += tokens_in + tokens_out
        cost = cost_of(model, tokens_in, tokens_out, self.prices)
        if cost is None:
            self.unpriced_models.add(model)
        else:
            self.cost_usd += cost
        if cached:
            self.spend.cached += 1
            return
        self.spend.requests += 1
        self.spend.tokens_in += tokens_in
        self.spend.tokens_out += tokens_out
        if cost is None:
            self.spend.cost_known = False
        else:
            self.spend.cost_usd += cost

    def shares(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.max_tokens:
            out["max_tokens"] = self.tokens / self.max_tokens
        if self.max_cost_usd:
            out["max_cost"] = self.cost_usd / self.max_cost_usd
        if self.timeout_s:
            out["timeout"] = (time.monotonic() - self.started) / self.timeout_s
        return out

    def level(self) -> float:
        return max(self.shares().values(), default=0.0)

    def exhausted(self) -> str | None:
        """The name of the first budget at or past 100%, else None."""
        return next((k for k, v in self.shares().items() if v >= 1.0), None)

    def wrap_up(self) -> bool:
        return self.level() >= WRAP_UP_AT


@dataclass
class TurnCounter:
    """One agent's turns: a request that got an answer. Retries do not count; nothing resets it."""

    max_turns: int
    used: int = 0

    def take(self) -> None:
        self.used += 1

    @property
    def left(self) -> int:
        return max(0, self.max_turns - self.used)
