"""After the session (controller only): merge parts, write tests.jsonl, run the analysis, gate.

The analysis is another package's job (``engine.run.run_analysis``); it is
imported lazily through one adapter, and any failure there becomes one terminal line —
never a failed user run unless ``--halo-strict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_halo.capture.writer import JsonlWriter
from pytest_halo.merge import MergeStats, find_parts, merge_parts
from pytest_halo.options import HaloConfig
from pytest_halo.records import TestRecords

ANALYSIS_OUTPUTS = ("findings.json", "report.md", "junit.xml")
EXIT_TESTS_FAILED = 1
EXIT_INTERNAL_ERROR = 3


@dataclass
class SessionResult:
    """Everything the terminal summary and the exit-status logic need."""

    halo_dir: Path
    traces_path: Path
    tests_path: Path
    stats: MergeStats
    n_tests: int = 0
    n_failing: int = 0
    outcome: Any = None
    analysis_error: str | None = None
    notes: list[str] = field(default_factory=list)
    crashed_workers: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str | None:
        """The gate verdict ('pass' | 'fail'), None when no analysis ran."""
        if self.outcome is None:
            return None
        v = getattr(self.outcome, "verdict", None)
        if v is None:
            gate = getattr(getattr(self.outcome, "findings", None), "gate", None)
            v = getattr(gate, "verdict", None)
        return str(v) if v is not None else None


def write_tests(path: Path, records: TestRecords, stats: MergeStats, run_id: str) -> int:
    """One JSON line per test: nodeid, outcome, duration, reason, worker, trace ids, span count."""
    if path.exists():
        path.unlink()
    w = JsonlWriter(path)
    n = 0
    seen = set()
    for nodeid, rec in records.by_nodeid.items():
        seen.add(nodeid)
        w.write({**rec, "run_id": run_id, "trace_ids": list(stats.traces_by_test.get(nodeid, {})),
                 "spans": stats.spans_by_test.get(nodeid, 0)})
        n += 1
    for nodeid, traces in stats.traces_by_test.items():  # spans of a test pytest never reported
        if nodeid not in seen:
            w.write({"nodeid": nodeid, "outcome": "unknown", "duration": 0.0, "reason": "no report",
                     "worker": "", "phases": {}, "run_id": run_id, "trace_ids": list(traces),
                     "spans": stats.spans_by_test.get(nodeid, 0)})
            n += 1
    w.close()
    if n == 0:
        path.touch()
    return n


def build_reasoners(cfg: HaloConfig) -> tuple[list[Any], str | None]:
    """LLM reasoners for the analysis, plus a one-line note when there are none."""
    if not cfg.llm.configured:
        return [], "halo: LLM analysis skipped (no model configured)"
    try:
        from engine.llm import make_reasoner  # type: ignore[attr-defined]
    except Exception as exc:  # the LLM engine is optional / may not exist yet
        return [], f"halo: LLM analysis unavailable ({type(exc).__name__}: {exc})"
    try:
        return [make_reasoner(cfg.llm)], None
    except Exception as exc:
        return [], f"halo: LLM analysis unavailable ({type(exc).__name__}: {exc})"


def run_engine_analysis(
    cfg: HaloConfig, traces: Path, tests: Path, out_dir: Path, reasoners: list[Any]
) -> tuple[Any, str | None]:
    """The one adapter to the orchestrator ``engine.run.run_analysis``: (outcome, error line)."""
    try:
        from engine.run import run_analysis
    except Exception as exc:
        return None, f"analysis unavailable ({type(exc).__name__}: {exc})"
    try:
        outcome = run_analysis(
            [traces], out_dir, baseline=cfg.baseline, fail_on=cfg.fail_on,
            update_baseline=cfg.update_baseline, tests_file=tests, reasoners=reasoners,
        )
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return None, f"{type(exc).__name__}: {first}"
    return outcome, None


def after_session(
    cfg: HaloConfig, run_id: str, records: TestRecords, crashed_workers: list[str] | None = None
) -> SessionResult:
    """Merge, write tests.jsonl, analyse. Never raises for analysis problems."""
    halo_dir = cfg.dir
    parts_dir = halo_dir / "parts"
    parts = find_parts(parts_dir, run_id)
    traces_path = halo_dir / "traces.jsonl"
    tests_path = halo_dir / "tests.jsonl"
    stats = merge_parts(parts, traces_path, records.outcomes())
    n_tests = write_tests(tests_path, records, stats, run_id)
    for p in parts:
        p.unlink(missing_ok=True)
    try:
        parts_dir.rmdir()
    except OSError:
        pass
    result = SessionResult(halo_dir, traces_path, tests_path, stats, n_tests=n_tests,
                           crashed_workers=list(crashed_workers or []))
    result.n_failing = sum(1 for r in records.by_nodeid.values() if r["outcome"] in ("failed", "error"))
    for name in ANALYSIS_OUTPUTS:  # never leave a previous run's findings next to this run's traces
        (halo_dir / name).unlink(missing_ok=True)
    if cfg.skip_analysis:
        result.notes.append("halo: analysis skipped (--halo-skip-analysis)")
        return result
    if stats.spans == 0 and n_tests == 0:
        result.notes.append("halo: nothing to analyse (no tests ran)")
        return result
    reasoners, note = build_reasoners(cfg)
    if note:
        result.notes.append(note)
    result.outcome, result.analysis_error = run_engine_analysis(cfg, traces_path, tests_path, halo_dir, reasoners)
    return result


def gate_exit_status(exitstatus: int, result: SessionResult, cfg: HaloConfig) -> tuple[int, str | None]:
    """New exit status and a distinct line: gate failure turns green red, never red green."""
    if result.analysis_error is not None and cfg.strict:
        if int(exitstatus) == 0:
            return EXIT_INTERNAL_ERROR, "halo: analysis failed and --halo-strict is set: exit status 3"
        return exitstatus, None
    if result.verdict == "fail" and cfg.fail_on != "never":
        if int(exitstatus) == 0:
            return EXIT_TESTS_FAILED, (f"halo: GATE FAILED (fail-on={cfg.fail_on}): all tests passed, "
                                       "but the agent shows failure modes the gate rejects: exit status 1")
        return exitstatus, f"halo: gate failed too (fail-on={cfg.fail_on})"
    return exitstatus, None
