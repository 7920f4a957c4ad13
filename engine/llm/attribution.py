"""The LLM's ``suspected_change``: a mode's attribution to a place in the code, checked before it is kept.

The model may name ``path:line`` (or ``path``) for a mode it reports. Kept only when the file is
inside the repository (no ``..``, no symlink out, no absolute path elsewhere), exists and has that
line; and, when a diff base is known, when it is a file the change under review touched and the line
one it changed. Anything else is dropped from the mode (the mode itself stands) and counted in one
note. ``carry_suspected_changes`` puts the checked attributions back on the findings' modes after
the orchestrator has recounted signature modes (which rebuilds them from the signature library).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_WHERE = re.compile(r"^(?P<path>.+?)(?::(?P<line>\d+)(?:-\d+)?)?$")
MAX_FILE_BYTES = 20_000_000  # past this a file's lines are not counted (the line is then taken as given)

NO_REPOSITORY = "no repository to check it against"
OUTSIDE = "outside the repository"
NO_FILE = "no such file in the repository"
PAST_END = "line past the end of the file"
NOT_CHANGED = "not in a file the change under review touched"
LINE_NOT_CHANGED = "not a line the change under review changed"


@dataclass(frozen=True)
class ChangeScope:
    """The repository root (None: unknown) and the lines the change under review touched (None: no diff base)."""

    root: Path | None
    changed: dict[str, set[int]] | None = None

    @classmethod
    def of(cls, repo: Path | None, diff_base: str | None = None) -> ChangeScope:
        """The scope of ``repo``: its changed lines against ``diff_base`` (else ``GITHUB_BASE_REF``) when one resolves."""
        if repo is None or not Path(repo).is_dir():
            return cls(None)
        from engine.code.git_tools import changed_lines, git_root
        from engine.code.git_tools import diff_base as merge_base
        from engine.code.tools import CodeToolError

        root = Path(repo).resolve()
        if git_root(root) is None:
            return cls(root)
        base = merge_base(root, diff_base)
        if base is None:
            return cls(root)
        try:
            return cls(root, changed_lines(root, base))
        except CodeToolError:
            return cls(root)

    def check(self, raw: str) -> tuple[str | None, str]:
        """(``path:line`` or ``path``, relative to the root; "") when it holds, else (None, why it was dropped)."""
        m = _WHERE.match(raw.strip().strip("`").strip())
        if self.root is None:
            return None, NO_REPOSITORY
        if m is None:
            return None, NO_FILE
        line = int(m.group("line")) if m.group("line") else None
        given = Path(m.group("path").strip())
        try:
            target = (given if given.is_absolute() else self.root / given).resolve()
            rel = target.relative_to(self.root).as_posix()
        except (OSError, ValueError, RuntimeError):
            return None, OUTSIDE
        if not target.is_file():
            return None, NO_FILE
        if line is not None and (line < 1 or _past_end(target, line)):
            return None, PAST_END
        if self.changed is not None:
            lines = self.changed.get(rel)
            if not lines:
                return None, NOT_CHANGED
            if line is not None and 0 not in lines and line not in lines:  # 0: an untracked file, every line new
                return None, LINE_NOT_CHANGED
        return (f"{rel}:{line}" if line is not None else rel), ""


def _past_end(path: Path, line: int) -> bool:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return False
        data = path.read_bytes()
    except OSError:
        return True
    return line > data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


class SuspectChecker:
    """Checks the run's attributions against one ``ChangeScope``, computed on first use (it runs git)."""

    def __init__(self, make_scope: Callable[[], ChangeScope]) -> None:
        self._make_scope = make_scope
        self._scope: ChangeScope | None = None
        self._lock = threading.Lock()
        self.dropped: Counter[str] = Counter()

    def check(self, raw: str | None) -> str | None:
        if raw is None or not raw.strip():
            return None
        with self._lock:
            if self._scope is None:
                self._scope = self._make_scope()
            kept, why = self._scope.check(raw)
            if kept is None:
                self.dropped[why] += 1
        return kept

    def note(self) -> str | None:
        """One line counting what was dropped and why (None when nothing was)."""
        n = sum(self.dropped.values())
        if not n:
            return None
        whys = ", ".join(f"{c} {why}" for why, c in self.dropped.most_common())
        return f"LLM suspected_change dropped from {n} mode{'s' if n != 1 else ''}: {whys}"


def carry_suspected_changes(findings: Any, modes: Iterable[Any]) -> int:
    """Put the reasoner's checked ``suspected_change`` on the findings' modes it became; returns how many.

    A signature mode is found by its signature id: the mode's own id, or ``details.signature_id`` when it
    merged into a detector mode. A mode that already has an attribution keeps it."""
    from engine.signatures import normalize_signature, signature_id

    by_sig: dict[str, str] = {}
    by_id: dict[str, str] = {}
    for m in modes:
        if not getattr(m, "suspected_change", None):
            continue
        by_id[m.id] = m.suspected_change
        if m.signature is not None:
            by_sig[signature_id(normalize_signature(m.signature))] = m.suspected_change
    n = 0
    for mode in findings.failure_modes:
        if mode.suspected_change:
            continue
        keys = [*(mode.details.get("signature_id") or []), mode.id]
        got = next((by_sig.get(k) or by_id.get(k) for k in keys if by_sig.get(k) or by_id.get(k)), None)
        if got:
            mode.suspected_change = got
            n += 1
    return n
