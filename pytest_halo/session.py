"""After the session (controller only): merge parts, write tests.jsonl, run the analysis, gate.

The analysis is another package's job (``engine.run.run_analysis``); it is
imported lazily through one adapter, and any failure there becomes one terminal line —
never a failed user run unless ``--halo-strict``.

Our own I/O failures (unwritable or misplaced ``--halo-dir``, a full disk, a file-size
limit, a merge that cannot be written) are *faults*: the run keeps what could be written,
skips the analysis (partial data would gate wrongly), and prints one warning line; the exit
status stays the tests' own unless ``--halo-strict``. All of it runs under the directory's
finish lock, so two sessions sharing a project publish one after the other, each whole.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.safe_io import UnsafePathError, atomic_writer
from pytest_halo.capture.writer import dumps_line
from pytest_halo.merge import MergeStats, find_parts, merge_parts
from pytest_halo.options import HaloConfig
from pytest_halo.records import TestRecords
from pytest_halo.runlock import FinishLock

if TYPE_CHECKING:  # imported at run time only through the adapter (the engine may be shadowed)
    from engine.run import AnalysisOutcome

# what one analysis writes into .halo (signatures.json stays: the library carries over to the next run)
ANALYSIS_OUTPUTS = ("findings.json", "report.md", "junit.xml", "report.html", "fix-brief.md", "fix-brief.json",
                    "llm-report.md", "engine-traces.jsonl")
EXIT_TESTS_FAILED = 1
EXIT_INTERNAL_ERROR = 3
GATE_UNUSABLE = "the gate could not run: "  # prefix of an analysis error that fails closed


@dataclass
class SessionResult:
    """Everything the terminal summary and the exit-status logic need."""

    halo_dir: Path
    traces_path: Path
    tests_path: Path
    stats: MergeStats
    n_tests: int = 0
    n_failing: int = 0
    outcome: AnalysisOutcome | None = None
    analysis_error: str | None = None
    notes: list[str] = field(default_factory=list)
    crashed_workers: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # our own I/O failures, reported as one line
    lost_spans: int = 0
    interrupted: bool = False
    traces_written: bool = False

    @property
    def verdict(self) -> str | None:
        """The gate verdict ('pass' | 'fail'), None when no analysis ran."""
        return None if self.outcome is None else self.outcome.verdict


def write_tests(path: Path, records: TestRecords, stats: MergeStats, run_id: str, *, interrupted: bool = False) -> int:
    """One JSON line per test: nodeid, outcome, duration, reason, worker, trace ids, span count.

    A test with spans but no report is ``unknown``, or ``interrupted`` when the run was stopped
    (under xdist a worker's test in flight at Ctrl-C sends its spans but never its report).
    Replaced whole (temporary file + rename): a concurrent run never sees half of it.
    """
    orphan_outcome, orphan_reason = ("interrupted", "run interrupted before its report arrived") if interrupted \
        else ("unknown", "no report")
    n = 0
    seen = set()
    with atomic_writer(path) as out:
        for nodeid, rec in records.by_nodeid.items():
            seen.add(nodeid)
            out.write(dumps_line({**rec, "run_id": run_id, "trace_ids": list(stats.traces_by_test.get(nodeid, {})),
                                  "spans": stats.spans_by_test.get(nodeid, 0)}))
            n += 1
        for nodeid, traces in stats.traces_by_test.items():  # spans of a test pytest never reported
            if nodeid not in seen:
                out.write(dumps_line({"nodeid": nodeid, "outcome": orphan_outcome, "duration": 0.0, "reason": orphan_reason,
                                      "worker": "", "phases": {}, "run_id": run_id, "trace_ids": list(traces),
                                      "spans": stats.spans_by_test.get(nodeid, 0)}))
                n += 1
    return n


def describe_os_error(exc: BaseException, path: Path | None = None) -> str:
    """``could not write <path>: <reason>`` in one line (the path relative when that is shorter)."""
    where = path if path is not None else getattr(exc, "filename", None)
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if where is None:
        return f"{type(exc).__name__}: {reason}"
    return f"could not write {_rel(Path(where))}: {reason}"


def _rel(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if len(rel) < len(str(path)) else str(path)


def build_reasoners(cfg: HaloConfig) -> tuple[list[Any], str | None]:
    """LLM reasoners for the analysis (with live progress on stderr), plus a one-line note when there are none."""
    if not cfg.llm.configured:
        return [], "halo: LLM analysis skipped (no model configured)"
    try:
        from engine.llm import make_reasoner
        from engine.llm.progress import ProgressReporter

        providers = []
        if cfg.repo is not None:  # the read-only code and git tools over the project under test
            from engine.code.provider import code_tool_provider

            providers.append(code_tool_provider(cfg.repo, cfg.diff_base))
        return [make_reasoner(cfg.llm, progress=ProgressReporter(sys.stderr), providers=providers)], None
    except Exception as exc:  # noqa: BLE001 - no openai, no key, a bad setting: one line, deterministic findings stand
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return [], f"halo: LLM analysis unavailable: {first}"


def run_engine_analysis(
    cfg: HaloConfig, traces: Path, tests: Path, out_dir: Path, reasoners: list[Any]
) -> tuple[Any, str | None]:
    """The one adapter to the orchestrator ``engine.run.run_analysis``: (outcome, error line).

    A baseline that became unusable during the run (it was checked before the tests) is the
    gate's failure, not ours: its line starts with ``GATE_UNUSABLE`` and the exit status fails closed.
    """
    from pytest_halo.engine_check import check_engine

    try:
        check_engine()
        from engine.analysis.baseline import BaselineError
        from engine.run import run_analysis
    except Exception as exc:  # noqa: BLE001 - a shadowed or broken engine: one line
        return None, f"analysis unavailable ({type(exc).__name__}: {exc})"
    try:
        outcome = run_analysis(
            [traces], out_dir, baseline=cfg.baseline, fail_on=cfg.fail_on,
            update_baseline=cfg.update_baseline, baseline_traces=cfg.baseline_traces, tests_file=tests,
            reasoners=reasoners,
            repo_root=cfg.repo, diff_base=cfg.diff_base,
            detectors=cfg.hooks.detectors() if cfg.hooks else (),
            findings_hooks=cfg.hooks.findings_hooks() if cfg.hooks else (),
        )
    except BaselineError as exc:
        return None, f"{GATE_UNUSABLE}{exc}"
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return None, f"{type(exc).__name__}: {first}"
    return outcome, None


def after_session(
    cfg: HaloConfig, run_id: str, records: TestRecords, crashed_workers: list[str] | None = None,
    *, faults: list[str] | None = None, lost_spans: int = 0, interrupted: bool = False,
) -> SessionResult:
    """Merge, write tests.jsonl, analyse — one run at a time per directory. Never raises for I/O problems.

    ``faults`` are capture failures already met (this process's and the workers'); a run
    with faults, or an interrupted one, is merged and recorded but not analysed.
    """
    halo_dir = cfg.dir
    result = SessionResult(halo_dir, halo_dir / "traces.jsonl", halo_dir / "tests.jsonl", MergeStats(),
                           crashed_workers=list(crashed_workers or []), faults=list(faults or []),
                           lost_spans=lost_spans, interrupted=interrupted)
    result.n_failing = sum(1 for r in records.by_nodeid.values() if r["outcome"] in ("failed", "error"))
    with FinishLock(halo_dir) as lock:
        if lock.waited_out:
            result.notes.append("halo: another run kept .halo busy; publishing without waiting for it")
        _finish(cfg, run_id, records, result)
    return result


def _finish(cfg: HaloConfig, run_id: str, records: TestRecords, result: SessionResult) -> None:
    halo_dir = cfg.dir
    parts_dir = halo_dir / "parts"
    parts = find_parts(parts_dir, run_id)
    try:
        result.stats = merge_parts(parts, result.traces_path, records.outcomes())
        result.traces_written = True
    except (OSError, UnsafePathError) as exc:
        result.faults.append(describe_os_error(exc, result.traces_path) + f"; this run's spans stay in {_rel(parts_dir)}")
        parts = []  # kept for the user; the next run reports and removes them
    try:
        result.n_tests = write_tests(result.tests_path, records, result.stats, run_id, interrupted=result.interrupted)
    except (OSError, UnsafePathError) as exc:
        result.faults.append(describe_os_error(exc, result.tests_path))
        result.n_tests = len(records.by_nodeid)
    for p in parts:
        with contextlib.suppress(OSError):
            p.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        parts_dir.rmdir()  # fails while another run's parts or lock are there: fine
    for name in ANALYSIS_OUTPUTS:  # never leave a previous run's findings next to this run's traces
        with contextlib.suppress(OSError):
            (halo_dir / name).unlink(missing_ok=True)
    if result.faults:
        return  # the fault line says the analysis was skipped
    if result.interrupted:
        result.notes.append("halo: run interrupted; analysis skipped")
        return
    if cfg.skip_analysis:
        result.notes.append("halo: analysis skipped (--halo-skip-analysis)")
        return
    if result.stats.spans == 0 and result.n_tests == 0:
        result.notes.append("halo: nothing to analyse (no tests ran)")
        return
    reasoners, note = build_reasoners(cfg)
    if note:
        result.notes.append(note)
    result.outcome, result.analysis_error = run_engine_analysis(
        cfg, result.traces_path, result.tests_path, halo_dir, reasoners)


def gate_requested(cfg: HaloConfig) -> bool:
    """Whether this run was asked to gate: a baseline to compare with, or ``fail_on=any`` (which gates
    without one). Such a run fails closed when halo's own failure leaves it without a verdict."""
    if cfg.fail_on == "never" or cfg.update_baseline:
        return False
    return cfg.baseline is not None or cfg.fail_on == "any"


def fault_line(result: SessionResult, strict: bool, gated: bool = False) -> str | None:
    """The one warning line for our own failures: the first cause, what was kept, what follows."""
    if not result.faults:
        return None
    more = f" (and {len(result.faults) - 1} more problems)" if len(result.faults) > 1 else ""
    kept = (f"kept {result.stats.spans} spans in {_rel(result.traces_path)}" if result.traces_written
            else "no traces.jsonl written")
    lost = f", at least {result.lost_spans} spans lost" if result.lost_spans else ""
    if strict:
        tail = "--halo-strict: exit status 3"
    elif gated:
        tail = "the gate could not run: a passing run fails closed (exit status 3)"
    else:
        tail = "exit status is the tests' own"
    return f"halo: WARNING: {result.faults[0]}{more}; {kept}{lost}; analysis skipped; {tail}"


def gate_exit_status(exitstatus: int, result: SessionResult, cfg: HaloConfig) -> tuple[int, str | None]:
    """New exit status and a distinct line: gate failure turns green red, never red green.

    With ``--halo-strict`` a capture fault turns a run whose tests passed or failed into exit
    status 3 (interrupted or unusable runs keep theirs), and a failed analysis a green run. A run
    that was asked to gate (``gate_requested``) and got no verdict fails closed the same way when
    its tests passed: a green exit must mean the gate passed.
    """
    gated = gate_requested(cfg)
    if result.faults:
        if cfg.strict and int(exitstatus) in (0, EXIT_TESTS_FAILED):
            return EXIT_INTERNAL_ERROR, None  # the fault line says so
        if gated and int(exitstatus) == 0:
            return EXIT_INTERNAL_ERROR, None
        return exitstatus, None
    if result.analysis_error is not None and result.analysis_error.startswith(GATE_UNUSABLE):
        if int(exitstatus) == 0:  # the gate fails closed: a baseline that went bad never passes a run
            return EXIT_INTERNAL_ERROR, "halo: the baseline became unusable during the run: exit status 3"
        return exitstatus, None
    if result.analysis_error is None and cfg.strict and _llm_failed(result):
        if int(exitstatus) == 0:
            return EXIT_INTERNAL_ERROR, "halo: the LLM engine failed and --halo-strict is set: exit status 3"
        return exitstatus, None
    if result.analysis_error is not None and (cfg.strict or gated):
        if int(exitstatus) == 0:
            why = "--halo-strict is set" if cfg.strict else "the gate could not run, so it fails closed"
            return EXIT_INTERNAL_ERROR, f"halo: analysis failed and {why}: exit status 3"
        return exitstatus, None
    if result.verdict == "fail" and cfg.fail_on != "never":
        if int(exitstatus) == 0:
            return EXIT_TESTS_FAILED, (f"halo: GATE FAILED (fail-on={cfg.fail_on}): all tests passed, "
                                       "but the agent shows failure modes the gate rejects: exit status 1")
        return exitstatus, f"halo: gate failed too (fail-on={cfg.fail_on})"
    return exitstatus, None


def _llm_failed(result: SessionResult) -> bool:
    """Whether a reasoner of this run failed (not merely ran out of budget)."""
    results = result.outcome.reason_results if result.outcome is not None else []
    if not results:
        return False
    from engine.llm.reasoner import engine_failed

    return any(engine_failed(r) for r in results)
