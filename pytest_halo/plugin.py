"""pytest entry point (``pytest11: halo``): inert unless ``--halo`` / ``HALO=1`` / ini / ``[tool.halo]``.

Nothing heavy is imported here: when halo is off only the option table is loaded, and
``-p no:halo`` skips this module entirely. When on, ``runtime.HaloPlugin`` is registered.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_halo.optspec import add_options, is_enabled


def pytest_addoption(parser: Any) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: Any) -> None:
    from pytest_halo import hooks

    pluginmanager.add_hookspecs(hooks)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: Any) -> None:
    if not is_enabled(config):
        return
    from pytest_halo.options import resolve_config

    try:
        cfg = resolve_config(config)
    except ValueError as exc:  # a bad value, named with its source
        raise pytest.UsageError(f"halo: invalid configuration: {exc}") from exc
    if cfg.baseline is not None and not hasattr(config, "workerinput"):  # the controller, once, before any test
        check_gate_inputs(cfg.baseline, cfg.update_baseline)
    from pytest_halo.hooks import HaloHooks
    from pytest_halo.runtime import HaloPlugin

    cfg.hooks = HaloHooks(config)

    config.pluginmanager.register(HaloPlugin(config, cfg), "halo-runtime")


def check_gate_inputs(baseline: Any, update: bool) -> None:
    """The gate fails closed: a shadowed engine or an unusable baseline stops the run before any test (exit 4)."""
    from pytest_halo.engine_check import EngineShadowedError, check_engine

    try:
        check_engine()
    except EngineShadowedError as exc:
        raise pytest.UsageError(f"halo: {exc}") from None
    from engine.analysis.baseline import BaselineError, check_baseline_path

    try:
        check_baseline_path(baseline, update, update_flag="--halo-update-baseline")
    except BaselineError as exc:
        raise pytest.UsageError(f"halo: {exc}") from None
