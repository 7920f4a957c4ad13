"""The hooks that run when halo is enabled: capture lifecycle per process, records and finish on the controller.

Roles: a serial run is its own controller (worker id ``master``); under pytest-xdist each
worker captures into its own part file and the controller (which runs no tests) records
reports, merges once every node is down, analyses once, and prints the summary.

Never break the user's run: every hook body that does our own work is guarded — an error
becomes a *fault* (reported once, in one line, at the end), never an INTERNALERROR, and
the exit status stays the tests' own unless ``--halo-strict``. Workers hand their faults
to the controller through xdist's ``workeroutput``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import pytest

from pytest_halo.capture import threads
from pytest_halo.capture.import_hook import call_after_import
from pytest_halo.capture.otel import OtelCapture
from pytest_halo.capture.recorder import Recorder
from pytest_halo.merge import part_path
from pytest_halo.options import HaloConfig
from pytest_halo.records import TestRecords, report_worker
from pytest_halo.runlock import RunLock, sweep_stale

RUN_ID_KEY = "halo_run_id"
FAULTS_KEY = "halo_faults"  # workeroutput: [fault line, ...]
LOST_KEY = "halo_lost_spans"
_STOPS = (KeyboardInterrupt, pytest.exit.Exception)  # a test stopped mid-way, not a result


def new_run_id() -> str:
    """Sortable and unique enough: UTC time plus 24 random bits."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + os.urandom(3).hex()


class HaloPlugin:
    """Registered as ``halo-runtime`` by ``plugin.pytest_configure`` when halo is enabled."""

    def __init__(self, config: Any, cfg: HaloConfig) -> None:
        self.config = config
        self.cfg = cfg
        workerinput: Any = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        if self.is_worker:
            self.worker = str(workerinput.get("workerid", "gw?"))
            self.run_id = str(workerinput.get(RUN_ID_KEY) or workerinput.get("testrunuid") or new_run_id())
        else:
            self.worker = "master"
            self.run_id = new_run_id()
        self.recorder = Recorder(part_path(cfg.dir / "parts", self.run_id, self.worker), self.run_id, self.worker)
        self.otel = OtelCapture(self.recorder)
        self.agents: Any = None  # capture.agents_sdk.AgentsCapture, built once the app imports ``agents``
        self.records = TestRecords()  # controller: every test's record (from all workers)
        self.local = TestRecords() if self.is_worker else self.records  # tests run in this process
        self.crashed: list[str] = []
        self.result: Any = None
        self.gate_line: str | None = None
        self.fault_line: str | None = None
        self.faults: list[str] = []
        self.lost_spans = 0
        self.interrupted = False
        self.swept_line: str | None = None
        self._closed = False
        self._agents_hook: Any = None
        self._owner_token: Any = None
        self.run_lock: RunLock | None = None
        if not self.is_worker:
            self._claim_run()

    def _claim_run(self) -> None:
        """Mark this run live (its parts must not be swept) and sweep the parts of dead runs."""
        parts_dir = self.cfg.dir / "parts"
        try:
            self.run_lock = RunLock.acquire(parts_dir, self.run_id)
        except OSError as exc:
            from pytest_halo.session import describe_os_error

            self._fault(describe_os_error(exc, parts_dir))
            return
        self.swept_line = sweep_stale(parts_dir, self.run_id).line()

    def _fault(self, line: str) -> None:
        if line not in self.faults:
            self.faults.append(line)

    def _guard(self, what: str, exc: BaseException) -> None:
        """An unexpected error in our own hook code: one fault line, the run goes on."""
        first = (str(exc).strip().splitlines() or [""])[0]
        self._fault(f"internal error while {what}: {type(exc).__name__}: {first}"[:300])

    # ---------------------------------------------------------------- xdist (controller side)
    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[RUN_ID_KEY] = self.run_id

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        if error:
            gid = getattr(getattr(node, "gateway", None), "id", None) or "?"
            self.crashed.append(str(gid))
        out = getattr(node, "workeroutput", None) or {}
        for line in out.get(FAULTS_KEY) or []:
            self._fault(str(line))
        self.lost_spans += int(out.get(LOST_KEY) or 0)

    # ---------------------------------------------------------------- capture (every process)
    def pytest_sessionstart(self, session: Any) -> None:
        try:
            self.recorder.activate()
            threads.install()
            self.otel.ensure_attached(install=False)
            self._agents_hook = call_after_import("agents", self._register_agents)
        except Exception as exc:
            self._guard("starting capture", exc)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: Any) -> None:
        """User detectors are checked on the controller once every conftest is loaded, before any test."""
        if not self.is_worker and self.cfg.hooks is not None:
            self.cfg.hooks.check()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_setupnodes(self, config: Any, specs: Any) -> None:
        """Under xdist the controller never collects: it checks the detectors it will analyse with here."""
        if self.cfg.hooks is not None:
            self.cfg.hooks.check()

    def _attach(self) -> None:
        try:
            self.otel.ensure_attached(install=True)
            self._register_agents()
        except Exception as exc:
            self._guard("attaching to the tracer provider", exc)

    def _register_agents(self) -> bool:
        """Register with the Agents SDK once the app imported it (our side of it is imported only then)."""
        if "agents" not in sys.modules:
            return False
        if self.agents is None:
            from pytest_halo.capture.agents_sdk import AgentsCapture

            self.agents = AgentsCapture(self.recorder)
        return bool(self.agents.ensure_registered())

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Any:
        self._attach()
        self.recorder.context.enter(item.nodeid, "setup")
        outcome = yield
        try:
            self._release_owner()
            self.recorder.context.leave()
            excinfo = outcome.excinfo
            if excinfo is not None and issubclass(excinfo[0], _STOPS):
                self.interrupted = True
                self.local.interrupted(item.nodeid, self.worker, f"{excinfo[0].__name__} during the test")
            rec = self.local.by_nodeid.get(item.nodeid)
            self.recorder.test_finished(item.nodeid, rec["outcome"] if rec else None)
        except Exception as exc:
            self._guard("recording a test's spans", exc)

    def _release_owner(self) -> None:
        token, self._owner_token = self._owner_token, None
        if token is not None:
            self.recorder.context.release_work(token)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: Any) -> Any:
        self.recorder.context.phase = "setup"
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: Any) -> Any:
        self._attach()  # a provider set by a fixture during setup
        self.recorder.context.phase = "call"
        self._owner_token = self.recorder.context.own_work()  # threads started now belong to this test
        yield
        self._release_owner()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: Any, nextitem: Any) -> Any:
        self.recorder.context.phase = "teardown"
        yield

    # ---------------------------------------------------------------- records (every process: local outcomes;
    # on the controller this is the run-wide record, xdist forwarding every worker's reports)
    def pytest_runtest_logreport(self, report: Any) -> None:
        try:
            self.local.add(report, report_worker(report, self.worker))
        except Exception as exc:
            self._guard("recording a test report", exc)

    # ---------------------------------------------------------------- finish
    def _close_capture(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if getattr(self, "_agents_hook", None) is not None:
                self._agents_hook.remove()
            if self.agents is not None and self.agents.core is not None:
                self.agents.core.flush_open_traces()
            self.otel.close()
        except Exception as exc:
            self._guard("flushing captured spans", exc)
        finally:
            threads.uninstall()
        try:
            self.recorder.close()
        except Exception as exc:
            self._guard("closing the part file", exc)
        error = self.recorder.error
        if error is not None:
            from pytest_halo.session import describe_os_error

            self._fault(describe_os_error(error, self.recorder.writer.path))
        self.lost_spans += self.recorder.writer.lost

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        try:
            self._finish(session)
        except BaseException as exc:  # noqa: BLE001 - a second Ctrl-C or our bug: one line, no traceback
            self._guard("finishing the session", exc)
            if self.result is not None:
                self.result.faults.extend(f for f in self.faults if f not in self.result.faults)
                from pytest_halo.session import gate_exit_status

                session.exitstatus = gate_exit_status(session.exitstatus, self.result, self.cfg)[0]
        finally:
            if self.run_lock is not None:
                self.run_lock.release()

    def _finish(self, session: Any) -> None:
        self._close_capture()
        if self.is_worker:
            out = getattr(self.config, "workeroutput", None)
            if out is not None:
                out[FAULTS_KEY] = list(self.faults)
                out[LOST_KEY] = self.lost_spans
            return
        from pytest_halo.merge import MergeStats
        from pytest_halo.session import (
            SessionResult,
            after_session,
            fault_line,
            gate_exit_status,
            gate_requested,
        )

        interrupted = self.interrupted or int(session.exitstatus) == int(pytest.ExitCode.INTERRUPTED)
        if interrupted:  # under xdist the worker's own record of the stop never reaches us
            for nodeid, rec in list(self.records.by_nodeid.items()):
                if "teardown" not in rec["phases"]:
                    self.records.interrupted(nodeid, rec["worker"], "KeyboardInterrupt during the test")
        # What the summary shows if finishing itself fails half-way.
        self.result = SessionResult(self.cfg.dir, self.cfg.dir / "traces.jsonl", self.cfg.dir / "tests.jsonl",
                                    MergeStats(), n_tests=len(self.records.by_nodeid), faults=list(self.faults))
        self.result = after_session(self.cfg, self.run_id, self.records, self.crashed, faults=self.faults,
                                    lost_spans=self.lost_spans, interrupted=interrupted)
        self.fault_line = fault_line(self.result, self.cfg.strict, gate_requested(self.cfg))
        new_status, self.gate_line = gate_exit_status(session.exitstatus, self.result, self.cfg)
        if new_status != session.exitstatus:
            session.exitstatus = new_status

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.result is None:
            return
        from pytest_halo.session import fault_line, gate_requested
        from pytest_halo.terminal import write_summary

        if self.result.faults and self.fault_line is None:
            self.fault_line = fault_line(self.result, self.cfg.strict, gate_requested(self.cfg))
        write_summary(terminalreporter, self.result, self.gate_line, self.fault_line, self.swept_line)

    def pytest_unconfigure(self, config: Any) -> None:
        self._close_capture()
        if self.run_lock is not None:
            self.run_lock.release()
