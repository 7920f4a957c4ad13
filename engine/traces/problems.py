"""Bad-input accounting: every skipped or repaired record is counted by reason, the first few kept as file:line.

Bad input never aborts a run; it is tallied here and reported (``halo index --json``,
the terminal summary, findings.json's dataset summary).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MAX_EXAMPLES = 20


@dataclass
class Problems:
    """Counts of skipped and repaired records by reason, with the first examples as ``file:line: reason``."""

    skipped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def skip(self, reason: str, where: str = "", detail: str = "") -> None:
        """Count one skipped record (``where`` is ``file:line``)."""
        self.skipped[reason] += 1
        self._example(reason, where, detail)

    def repair(self, reason: str, where: str = "", detail: str = "") -> None:
        """Count one record kept after a repair (clock skew, cycle broken, value capped...)."""
        self.repaired[reason] += 1
        self._example(reason, where, detail)

    def _example(self, reason: str, where: str, detail: str) -> None:
        if len(self.examples) < MAX_EXAMPLES:
            text = f"{where}: {reason}" if where else reason
            if detail:
                text += f" ({detail[:200]})"
            self.examples.append(text)

    def merge(self, other: Problems) -> None:
        self.skipped.update(other.skipped)
        self.repaired.update(other.repaired)
        for e in other.examples:
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(e)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "skipped": dict(sorted(self.skipped.items())),
            "repaired": dict(sorted(self.repaired.items())),
            "examples": list(self.examples),
        }
