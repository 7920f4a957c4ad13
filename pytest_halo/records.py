"""Per-test records (outcome, duration, short failure reason, worker) built from pytest reports.

Built on the controller from ``pytest_runtest_logreport`` — under xdist every worker's
reports arrive there too, including the synthetic failure xdist reports for a test whose
worker crashed, so no test is missing even when its worker's spans are.
"""

from __future__ import annotations

from typing import Any

from engine.sanitize import clean

REASON_MAX = 300


def short_reason(report: Any) -> str:
    """One line saying why a phase failed or skipped (crash message, or skip reason).

    Assertion messages quote whatever the test compared — tokens, passwords, terminal
    escapes from traces — so the line is redacted and stripped (``engine.sanitize.clean``).
    """
    longrepr = getattr(report, "longrepr", None)
    text: Any
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = getattr(crash, "message", None)
        if not text:
            lines = str(longrepr).strip().splitlines()
            text = lines[-1] if lines else ""
    text = " ".join(clean(str(text).split("\n")[0]).split())
    return text[:REASON_MAX]


def report_worker(report: Any, default: str) -> str:
    """The xdist worker that ran a test (``gw0``...), or ``default`` when serial."""
    node = getattr(report, "node", None)
    gateway = getattr(node, "gateway", None)
    gid = getattr(gateway, "id", None)
    if isinstance(gid, str):
        return gid
    wid = getattr(report, "worker_id", None)
    return wid if isinstance(wid, str) else default


class TestRecords:
    """Accumulates phases into one record per nodeid (outcome in passed|failed|skipped|error|interrupted)."""

    __test__ = False

    def __init__(self) -> None:
        self.by_nodeid: dict[str, dict[str, Any]] = {}

    def add(self, report: Any, worker: str) -> None:
        when = report.when
        rec = self.by_nodeid.get(report.nodeid)
        if rec is None:
            rec = {"nodeid": report.nodeid, "outcome": "passed", "duration": 0.0, "reason": "",
                   "worker": worker, "phases": {}}
            self.by_nodeid[report.nodeid] = rec
        rec["duration"] = round(rec["duration"] + float(getattr(report, "duration", 0.0) or 0.0), 6)
        rec["phases"][when] = report.outcome
        xfail = hasattr(report, "wasxfail")
        if xfail:
            rec["xfail"] = True
        outcome = rec["outcome"]
        if report.failed:
            if when not in ("setup", "teardown"):  # "call", or xdist's "???" for a crashed worker
                outcome = "failed"
            elif outcome != "failed":
                outcome = "error"
            rec["reason"] = short_reason(report)
        elif report.skipped:
            if outcome == "passed":
                outcome = "skipped"
                rec["reason"] = short_reason(report) or str(getattr(report, "wasxfail", "") or "")
        rec["outcome"] = outcome

    def interrupted(self, nodeid: str, worker: str, reason: str) -> None:
        """The test was stopped mid-way (Ctrl-C, ``pytest.exit``): its phases so far do not make it pass."""
        rec = self.by_nodeid.get(nodeid)
        if rec is None:
            rec = self.by_nodeid[nodeid] = {"nodeid": nodeid, "outcome": "passed", "duration": 0.0, "reason": "",
                                            "worker": worker, "phases": {}}
        if rec["outcome"] in ("passed", "skipped"):
            rec["outcome"] = "interrupted"
            rec["reason"] = clean(reason)[:REASON_MAX]

    def outcomes(self) -> dict[str, str]:
        return {k: v["outcome"] for k, v in self.by_nodeid.items()}
