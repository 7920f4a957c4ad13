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
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise pytest.UsageError(f"halo: invalid configuration: {exc}") from exc
    from pytest_halo.hooks import HaloHooks
    from pytest_halo.runtime import HaloPlugin

    cfg.hooks = HaloHooks(config)

    config.pluginmanager.register(HaloPlugin(config, cfg), "halo-runtime")
