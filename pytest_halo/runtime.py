"""The hooks that run when halo is enabled: capture lifecycle per process, records and finish on the controller.

Roles: a serial run is its own controller (worker id ``master``); under pytest-xdist each
worker captures into its own part file and the controller (which runs no tests) records
reports, merges once every node is down, analyses once, and prints the summary.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from pytest_halo.capture.agents_sdk import AgentsCapture
from pytest_halo.capture.import_hook import call_after_import
from pytest_halo.capture.otel import OtelCapture
from pytest_halo.capture.recorder import Recorder
from pytest_halo.merge import part_path
from pytest_halo.options import HaloConfig
from pytest_halo.records import TestRecords, report_worker

RUN_ID_KEY = "halo_run_id"


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
        self.agents = AgentsCapture(self.recorder)
        self.records = TestRecords()  # controller: every test's record (from all workers)
        self.local = TestRecords() if self.is_worker else self.records  # tests run in this process
        self.crashed: list[str] = []
        self.result: Any = None
        self.gate_line: str | None = None
        self._closed = False
        self._agents_hook: Any = None

    # ---------------------------------------------------------------- xdist (controller side)
    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[RUN_ID_KEY] = self.run_id

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        if error:
            gid = getattr(getattr(node, "gateway", None), "id", None) or "?"
            self.crashed.append(str(gid))

    # ---------------------------------------------------------------- capture (every process)
    def pytest_sessionstart(self, session: Any) -> None:
        self.recorder.activate()
        self.otel.ensure_attached(install=False)
        self._agents_hook = call_after_import("agents", self.agents.ensure_registered)

    def _attach(self) -> None:
        self.otel.ensure_attached(install=True)
        self.agents.ensure_registered()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Any:
        self._attach()
        self.recorder.context.enter(item.nodeid, "setup")
        try:
            yield
        finally:
            self.recorder.context.leave()
            rec = self.local.by_nodeid.get(item.nodeid)
            self.recorder.test_finished(item.nodeid, rec["outcome"] if rec else None)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: Any) -> Any:
        self.recorder.context.phase = "setup"
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: Any) -> Any:
        self._attach()  # a provider set by a fixture during setup
        self.recorder.context.phase = "call"
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: Any, nextitem: Any) -> Any:
        self.recorder.context.phase = "teardown"
        yield

    # ---------------------------------------------------------------- records (every process: local outcomes;
    # on the controller this is the run-wide record, xdist forwarding every worker's reports)
    def pytest_runtest_logreport(self, report: Any) -> None:
        self.local.add(report, report_worker(report, self.worker))

    # ---------------------------------------------------------------- finish
    def _close_capture(self) -> None:
        if self._closed:
            return
        self._closed = True
        if getattr(self, "_agents_hook", None) is not None:
            self._agents_hook.remove()
        if self.agents.core is not None:
            self.agents.core.flush_open_traces()
        self.otel.close()
        self.recorder.close()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        self._close_capture()
        if self.is_worker:
            return
        from pytest_halo.session import after_session, gate_exit_status

        self.result = after_session(self.cfg, self.run_id, self.records, self.crashed)
        new_status, self.gate_line = gate_exit_status(session.exitstatus, self.result, self.cfg)
        if new_status != session.exitstatus:
            session.exitstatus = new_status

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.result is None:
            return
        from pytest_halo.terminal import write_summary

        write_summary(terminalreporter, self.result, self.gate_line)

    def pytest_unconfigure(self, config: Any) -> None:
        self._close_capture()
