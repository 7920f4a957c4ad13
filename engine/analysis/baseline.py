"""The baseline gate: compare this run's systemic modes with a baseline findings file.

* **persisting** — systemic in both (or seen below threshold in the baseline) without a significant increase;
* **regressed** — prevalence increased significantly given *both* sample sizes (one-sided Fisher exact
  on affected/total runs, baseline vs candidate, p < alpha) — never a raw threshold;
* **new** — never seen in the baseline, and the baseline had enough runs that it would have shown up at
  the candidate's rate (P(0 of n_baseline) < alpha); otherwise **emerging** (reported, not a new-gate failure);
* **resolved** — systemic in the baseline, not systemic now.

``fail_on``: ``new`` fails on new modes; ``regressed`` on new or regressed; ``any`` on any systemic mode
(no baseline needed); ``never`` never fails.
"""

from __future__ import annotations

from pathlib import Path

from engine.analysis.stats import absence_p_value, increase_p_value
from engine.findings import Findings, Gate, GateEntry

# Timing and token-volume modes depend on the machine and the model's mood: reported, never gated.
INFORMATIONAL_CATEGORIES = frozenset({"latency_outlier", "token_outlier"})


def load_baseline(path: Path) -> Findings | None:
    """Read a baseline findings file; None when it does not exist (unreadable files raise ValueError)."""
    if not path.exists():
        return None
    try:
        return Findings.read(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"baseline {path} is not a readable findings.json: {str(exc).splitlines()[0]}") from exc


def _known_counts(baseline: Findings) -> dict[str, int]:
    counts = dict(baseline.observed)
    for one in baseline.one_offs:
        counts[one.id] = max(counts.get(one.id, 0), one.run_count)
    for mode in baseline.failure_modes:
        counts[mode.id] = max(counts.get(mode.id, 0), mode.run_count)
    return counts


def compare(
    current: Findings,
    baseline: Findings | None,
    *,
    baseline_path: Path | None,
    fail_on: str,
    alpha: float,
) -> Gate:
    """Classify every mode against the baseline and decide the verdict."""
    gate = Gate(baseline=str(baseline_path) if baseline_path and baseline else None, fail_on=fail_on)
    cand_total = current.dataset.runs
    if baseline is None:
        gate.notes.append(
            "no baseline: modes are reported but not gated"
            + (f" (would be created at {baseline_path} with --update-baseline)" if baseline_path else "")
        )
    else:
        base_total = baseline.dataset.runs
        base_modes = {m.id: m for m in baseline.failure_modes}
        known = _known_counts(baseline)
        for m in current.failure_modes:
            b = known.get(m.id, 0)
            entry = GateEntry(
                id=m.id,
                title=m.title,
                baseline_runs=b,
                baseline_total=base_total,
                candidate_runs=m.run_count,
                candidate_total=cand_total,
            )
            if m.id in base_modes or b > 0:
                entry.p_value = increase_p_value(b, base_total, m.run_count, cand_total)
                if m.id not in base_modes:
                    entry.note = "seen below the systemic threshold in the baseline"
                (gate.regressed if entry.p_value < alpha else gate.persisting).append(entry)
            else:
                entry.p_value = absence_p_value(m.run_count, cand_total, base_total)
                if entry.p_value < alpha:
                    gate.new.append(entry)
                else:
                    entry.note = f"unseen in the baseline, but {base_total} baseline runs are too few to call it new"
                    gate.emerging.append(entry)
        current_ids = {m.id for m in current.failure_modes}
        for m in baseline.failure_modes:
            if m.id not in current_ids:
                gate.resolved.append(
                    GateEntry(
                        id=m.id,
                        title=m.title,
                        baseline_runs=m.run_count,
                        baseline_total=base_total,
                        candidate_runs=current.observed.get(m.id, 0),
                        candidate_total=cand_total,
                        note="no longer systemic",
                    )
                )
    if fail_on == "any":
        failing = [m.id for m in current.failure_modes]
    elif baseline is None or fail_on == "never":
        failing = []
    elif fail_on == "regressed":
        failing = [e.id for e in gate.new + gate.regressed]
    else:
        failing = [e.id for e in gate.new]
    informational = {m.id for m in current.failure_modes if m.category in INFORMATIONAL_CATEGORIES}
    if informational & set(failing):
        gate.notes.append("latency/token outlier modes are reported but never fail the gate")
    gate.failing_ids = sorted(set(failing) - informational)
    gate.verdict = "fail" if gate.failing_ids else "pass"
    return gate
