"""Attribute a failure mode to the change under review: ``suspected_change: path:line``, no LLM needed.

When one of a mode's code locations (the tool it names, the line raising its error, the agent
that refuses) overlaps a line the change touched, that changed line is the prime suspect. Only
modes the change can explain are attributed: new, emerging and regressed ones against a
baseline, every mode when there is no baseline.
"""

from __future__ import annotations

from pathlib import Path

from engine.code.git_tools import changed_lines, diff_base, git_root
from engine.code.tools import CodeToolError
from engine.findings import CodeLocation, FailureMode, Findings


def suspect(mode: FailureMode, changed: dict[str, set[int]]) -> str | None:
    """``path:line`` of the first changed line inside one of the mode's locations, or None."""
    for loc in mode.locations:
        lines = changed.get(loc.path)
        if not lines:
            continue
        if 0 in lines:  # an untracked (new) file
            return f"{loc.path}:{loc.line}"
        span = range(loc.line, (loc.end_line or loc.line) + 1)
        hit = next((n for n in span if n in lines), None)
        if hit is not None:
            return f"{loc.path}:{hit}"
    return None


def _candidates(findings: Findings) -> list[FailureMode]:
    g = findings.gate
    if not g.baseline:
        return list(findings.failure_modes)
    ids = {e.id for e in (*g.new, *g.emerging, *g.regressed)}
    return [m for m in findings.failure_modes if m.id in ids]


def attribute_changes(findings: Findings, repo_root: Path, explicit_base: str | None = None) -> None:
    """Set ``suspected_change`` (and a ``changed_line`` location) on modes the change may have caused."""
    modes = [m for m in _candidates(findings) if m.locations and not m.suspected_change]
    if not modes or git_root(Path(repo_root)) is None:
        return
    base = diff_base(Path(repo_root), explicit_base)
    if base is None:
        if explicit_base:
            findings.notes.append(f"diff base {explicit_base!r} not found: no change attribution")
        return
    try:
        changed = changed_lines(Path(repo_root), base)
    except CodeToolError as exc:
        findings.notes.append(f"change attribution skipped: {exc}")
        return
    for mode in modes:
        where = suspect(mode, changed)
        if where:
            mode.suspected_change = where
            path, _, line = where.rpartition(":")
            mode.locations.append(CodeLocation(path=path, line=int(line), kind="changed_line",
                                               why="changed by the change under review"))
