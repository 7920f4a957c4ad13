"""Let user code read and annotate the findings before the gate, and never remove anything from them.

A hook (pytest's ``pytest_halo_findings``) may add notes, change a mode's ``suggested_fix``, fill
``details`` or ``locations``. It may not make the gate pass by deleting a mode (or taking it out
of the gate: unverifying it, moving it into a never-gated category), a one-off, an observed
signature or a piece of evidence: anything removed is put back and the hook gets a note.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.analysis.baseline import INFORMATIONAL_CATEGORIES
from engine.findings import Findings

FindingsHook = Callable[[Findings], object]


def _inventory(f: Findings) -> tuple[set[str], set[str], set[str], dict[str, int]]:
    return (
        # the gated modes: unverifying one, or moving it into a never-gated category, is a deletion
        {m.id for m in f.failure_modes if m.verified and m.category not in INFORMATIONAL_CATEGORIES},
        {o.id for o in f.one_offs},
        set(f.observed),
        {m.id: m.run_count for m in f.failure_modes},
    )


def run_findings_hooks(findings: Findings, hooks: Sequence[tuple[str, FindingsHook]]) -> None:
    """Call each ``(name, hook)`` on ``findings``; undo any deletion, and keep going when a hook raises."""
    for name, hook in hooks:
        before = findings.model_copy(deep=True)
        modes, one_offs, observed, counts = _inventory(before)
        try:
            hook(findings)
        except Exception as exc:  # noqa: BLE001 - user code never sinks the analysis
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            _restore_all(findings, before)
            findings.notes.append(f"findings hook {name} failed (its changes were discarded): "
                                  f"{type(exc).__name__}: {first}")
            continue
        after_modes, after_one_offs, after_observed, after_counts = _inventory(findings)
        lost = (modes - after_modes) | (one_offs - after_one_offs) | (observed - after_observed)
        shrunk = {i for i, n in counts.items() if after_counts.get(i, n) < n}
        if lost or shrunk or _evidence_lost(before, findings):
            _restore_all(findings, before)
            findings.notes.append(
                f"findings hook {name} removed or shrank {', '.join(sorted(lost | shrunk)) or 'evidence'}: "
                "hooks may read and annotate findings, never delete; its changes were discarded"
            )


def _evidence_lost(before: Findings, after: Findings) -> bool:
    had = {m.id: len(m.evidence) for m in before.failure_modes}
    return any(len(m.evidence) < had.get(m.id, 0) for m in after.failure_modes)


def _restore_all(findings: Findings, before: Findings) -> None:
    for name in type(findings).model_fields:
        setattr(findings, name, getattr(before, name))
