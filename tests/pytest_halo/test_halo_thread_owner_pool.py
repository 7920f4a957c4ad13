"""A thread pool whose worker thread was started by one test does not credit later work to that test."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from pytest_halo.capture import threads
from pytest_halo.capture.test_context import TestContext


@pytest.fixture
def installed() -> Iterator[None]:
    threads.install()
    try:
        yield
    finally:
        threads.uninstall()


def test_work_submitted_outside_a_call_runs_for_the_running_test(installed: None) -> None:
    ctx = TestContext()
    with ThreadPoolExecutor(max_workers=1) as pool:  # a session-scoped pool, say
        ctx.enter("t.py::test_a", "setup")
        ctx.phase = "call"
        token = ctx.own_work()
        pool.submit(lambda: None).result()  # starts the pool's only worker thread during test_a's call
        ctx.release_work(token)
        ctx.leave()

        ctx.enter("t.py::test_b", "setup")  # test_b's fixture submits work during setup

        def traced() -> tuple[str, str] | None:
            ctx.claim("trace-b")
            return ctx.attribution("trace-b")

        assert pool.submit(traced).result() == ("t.py::test_b", "setup")
