"""A Mermaid ``xychart-beta`` of mode prevalence, baseline vs this run, which GitHub renders natively.

The axis labels are our row labels (``M1``…), never trace text: Mermaid source is a second
language to escape, so none of it comes from a trace.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.findings import FailureMode, Findings


def prevalence_chart(f: Findings, modes: Sequence[FailureMode]) -> str | None:
    """The chart block, or None when there is nothing to compare (no modes)."""
    if not modes:
        return None
    entries = {e.id: e for e in (*f.gate.persisting, *f.gate.regressed, *f.gate.new, *f.gate.emerging)}
    now = [round(100 * m.prevalence, 1) for m in modes]
    base: list[float] = []
    for m in modes:
        e = entries.get(m.id)
        base.append(round(100 * e.baseline_runs / e.baseline_total, 1) if e and e.baseline_total else 0.0)
    top = max([*now, *base, 1.0])
    ymax = min(100.0, float(int(top * 1.2) + 1))
    labels = ", ".join(f'"M{i}"' for i in range(1, len(modes) + 1))
    lines = [
        "```mermaid",
        "xychart-beta",
        '    title "Runs with each mode (%): bars = this run, line = baseline"',
        f"    x-axis [{labels}]",
        f'    y-axis "% of runs" 0 --> {ymax:g}',
        f"    bar [{', '.join(f'{v:g}' for v in now)}]",
    ]
    if f.gate.baseline:
        lines.append(f"    line [{', '.join(f'{v:g}' for v in base)}]")
    lines.append("```")
    return "\n".join(lines) + "\n"
