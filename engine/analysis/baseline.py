"""The baseline gate: compare this run's systemic modes with a baseline findings file.

* **persisting** — systemic in both (or seen below threshold in the baseline) without a significant increase;
* **regressed** — prevalence increased significantly given *both* sample sizes (one-sided Fisher exact
  on affected/total runs, baseline vs candidate, p < alpha) — never a raw threshold;
* **new** — never seen in the baseline, and either the baseline had enough runs that it would have shown up
  at the candidate's rate (P(0 of n_baseline) < alpha), or it appears in enough tests that *passed* in the
  baseline (runs paired by test node id, ``paired_p_value``) — so small suites can gate; otherwise
  **emerging** (reported and named, not a new-gate failure);
* **resolved** — systemic in the baseline, not systemic now;
* **not re-run** — systemic in the baseline and absent now, but none of its evidence tests ran in this
  run (a run of a few tests, such as a fix brief's verify command): nothing says it is gone.

``fail_on``: ``new`` fails on new modes; ``regressed`` on new or regressed; ``any`` on any systemic mode
(no baseline needed); ``never`` never fails.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from engine.analysis.stats import absence_p_value, increase_p_value
from engine.findings import SCHEMA_VERSION, Findings, Gate, GateEntry
from engine.safe_io import UnsafePathError, check_regular_output, read_regular_bytes

# Timing and token-volume modes depend on the machine and the model's mood: reported, never gated.
INFORMATIONAL_CATEGORIES = frozenset({"latency_outlier", "token_outlier"})


class BaselineError(ValueError):
    """A baseline that was asked for but cannot be used: the gate must fail, with this one-line reason."""


def check_baseline_path(path: Path, update: bool, *, update_flag: str = "--update-baseline") -> Findings | None:
    """Validate a baseline before any work is done (the plugin calls it at configure time, before tests run).

    Returns the parsed baseline, or None when ``update`` will create or replace it. Raises
    ``BaselineError`` with one line naming the real cause: missing (and not being created), not a
    regular file (FIFO, device, directory — never opened, so never a hang), unreadable, not JSON,
    not a findings file, or another schema version. ``update_flag`` names the option that creates it.
    """
    path = Path(path)
    if update:
        try:
            check_regular_output(path)
        except UnsafePathError as exc:
            raise BaselineError(f"baseline {exc}") from None
        parent = path.parent if str(path.parent) else Path(".")
        existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
        if existing is not None and (not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK)):
            raise BaselineError(f"baseline {path} cannot be created: {existing} is not a writable directory")
        return None
    return load_baseline(path, update_flag=update_flag)


def load_baseline(path: Path, *, update: bool = False, update_flag: str = "--update-baseline") -> Findings | None:
    """Read a baseline findings file; ``BaselineError`` for anything that is not one.

    A missing file is an error unless ``update`` is about to create it (then None). When ``update``
    replaces an existing file that is unusable, the old content does not matter: None as well.
    """
    path = Path(path)
    try:
        return _parse_baseline(path, update_flag)
    except BaselineError:
        if update:
            return None
        raise


def _parse_baseline(path: Path, update_flag: str) -> Findings:
    try:
        data = read_regular_bytes(path)
    except FileNotFoundError:
        raise BaselineError(
            f"baseline {path} does not exist (create it with {update_flag}, or fix the path)"
        ) from None
    except IsADirectoryError:
        raise BaselineError(f"baseline {path} is a directory, not a findings.json file") from None
    except UnsafePathError as exc:
        raise BaselineError(f"baseline {exc}") from None
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise BaselineError(f"baseline {path} is empty (a truncated write?); regenerate it with {update_flag}")
    try:
        doc: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        hint = " (truncated?)" if exc.pos >= len(data.rstrip()) - 1 else ""
        raise BaselineError(
            f"baseline {path} is not valid JSON{hint}: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(doc, dict):
        raise BaselineError(f"baseline {path} is not a findings file: its JSON is a {type(doc).__name__}, not an object")
    if "schema_version" not in doc or "dataset" not in doc:
        missing = " and ".join(k for k in ("schema_version", "dataset") if k not in doc)
        raise BaselineError(
            f"baseline {path} is not a halo findings file (no {missing}); "
            f"point it at a findings.json written by halo or create it with {update_flag}"
        )
    if doc["schema_version"] != SCHEMA_VERSION:
        raise BaselineError(
            f"baseline {path} has schema_version {doc['schema_version']!r}; this halo reads "
            f"schema_version {SCHEMA_VERSION}: regenerate it with {update_flag}"
        )
    try:
        return Findings.model_validate(doc)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top level)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BaselineError(f"baseline {path} is not a valid findings file: {where}: {first['msg']}{more}") from None


def paired_p_value(paired_tests: int) -> float:
    """Evidence from pairing, for a mode the baseline never saw: ``(1/3) ** k``.

    ``k`` tests show the mode now and passed in the baseline without it. Had nothing changed,
    each such test would show the mode at some unknown rate; having seen it in its one
    candidate run, Laplace's rule of succession (uniform prior) puts the chance that its
    baseline run avoided the mode at 1/3, independently per test. So 3 paired tests give
    p = 0.037 (< 0.05) however small the suite, while 2 do not. Test node ids pair the runs.
    """
    return (1.0 / 3.0) ** paired_tests if paired_tests > 0 else 1.0


def _known_counts(baseline: Findings) -> dict[str, int]:
    counts = dict(baseline.observed)
    for one in baseline.one_offs:
        counts[one.id] = max(counts.get(one.id, 0), one.run_count)
    for mode in baseline.failure_modes:
        if mode.verified:
            counts[mode.id] = max(counts.get(mode.id, 0), mode.run_count)
    return counts


def _tests_ran(current: Findings, tests_run: Collection[str] | None) -> set[str] | None:
    """Every test this run ran — ``tests_run`` with the tests its findings name — or None when that set is
    not known to be complete (no test ids at all, or tests counted whose ids the findings do not keep)."""
    ran = set(tests_run or ()) | set(current.dataset.passing_test_ids)
    for group in (current.failure_modes, current.one_offs):
        ran.update(e.test_nodeid for m in group for e in m.evidence if e.test_nodeid)
    return ran if ran and len(ran) >= current.dataset.tests else None


def compare(
    current: Findings,
    baseline: Findings | None,
    *,
    baseline_path: Path | None,
    fail_on: str,
    alpha: float,
    unknowable: Collection[str] = (),
    tests_run: Collection[str] | None = None,
) -> Gate:
    """Classify every verified mode against the baseline and decide the verdict.

    Unverified modes (LLM patterns without a signature) are never gated, on either side.
    ``unknowable``: modes the baseline could not have seen (a signature first found now, with no
    baseline traces to evaluate it on): unseen there, they are emerging, never new — though
    ``fail_on="any"`` still fails on them, as on every systemic mode.
    ``tests_run``: the node ids of the tests this run ran (``tests.jsonl``); a baseline mode that is
    absent now is resolved only when one of its evidence tests ran, else not re-run. When the run's
    tests are not all known (traces without tests): every absent baseline mode is resolved.
    """
    gate = Gate(baseline=str(baseline_path) if baseline_path and baseline else None, fail_on=fail_on)
    cand_total = current.dataset.runs
    modes = [m for m in current.failure_modes if m.verified]
    unknowable = set(unknowable)
    not_evaluated = 0
    if baseline is None:
        gate.notes.append(
            "no baseline: modes are reported but not gated"
            + (f" (would be created at {baseline_path} with --update-baseline)" if baseline_path else "")
        )
    else:
        base_total = baseline.dataset.runs
        base_modes = {m.id: m for m in baseline.failure_modes if m.verified}
        base_passing = set(baseline.dataset.passing_test_ids)
        known = _known_counts(baseline)
        for m in modes:
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
                absent_p = absence_p_value(m.run_count, cand_total, base_total)
                paired = len({e.test_nodeid for e in m.evidence if e.test_nodeid} & base_passing)
                entry.p_value = min(absent_p, paired_p_value(paired))
                if paired and entry.p_value < absent_p:
                    entry.note = f"in {paired} tests that passed in the baseline without it"
                if m.id in unknowable:
                    entry.note = "found by a signature the baseline never evaluated (no baseline traces): cannot be called new"
                    gate.emerging.append(entry)
                    not_evaluated += 1
                elif entry.p_value < alpha:
                    gate.new.append(entry)
                else:
                    entry.note = (
                        f"unseen in the baseline, but {base_total} baseline runs"
                        + (f" and {paired} paired tests" if paired else "")
                        + " are too little evidence to call it new"
                    )
                    gate.emerging.append(entry)
        current_ids = {m.id for m in modes}
        ran = _tests_ran(current, tests_run)
        for m in base_modes.values():
            if m.id in current_ids:
                continue
            gone = GateEntry(
                id=m.id,
                title=m.title,
                baseline_runs=m.run_count,
                baseline_total=base_total,
                candidate_runs=current.observed.get(m.id, 0),
                candidate_total=cand_total,
                note="no longer systemic",
            )
            its_tests = {e.test_nodeid for e in m.evidence if e.test_nodeid}
            if ran is not None and its_tests and not its_tests & ran:
                gone.note = "none of its tests ran in this run"
                gate.not_rerun.append(gone)
            else:
                gate.resolved.append(gone)
    if fail_on == "any":
        failing = [m.id for m in modes]
    elif baseline is None or fail_on == "never":
        failing = []
    elif fail_on == "regressed":
        failing = [e.id for e in gate.new + gate.regressed]
    else:
        failing = [e.id for e in gate.new]
    informational = {m.id for m in modes if m.category in INFORMATIONAL_CATEGORIES}
    if informational & set(failing):
        gate.notes.append("latency/token outlier modes are reported but never fail the gate")
    gate.failing_ids = sorted(set(failing) - informational)
    if gate.emerging:
        gate.notes.append("emerging (unseen in the baseline, too little evidence to call new): "
                          + "; ".join(f"{e.id} {e.title}" for e in gate.emerging))
    if not_evaluated:
        gate.notes.append(
            f"{not_evaluated} signature mode(s) emerging, not new: the baseline carries no traces to evaluate them on "
            "(update it with baseline traces to gate them)"
        )
    gate.verdict = "fail" if gate.failing_ids else "pass"
    return gate
