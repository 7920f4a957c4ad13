"""Is ``import engine`` ours? halo-engine (and many projects) also have a top-level package ``engine``.

When another ``engine`` wins on ``sys.path`` every later import fails with a confusing
``No module named 'engine.cli'`` traceback, or worse, imports someone else's code. This module
imports nothing of ours, so it can say so in one line first: ``halo`` starts through
``halo_main`` and the plugin calls ``check_engine()`` before its lazy engine import.
"""

from __future__ import annotations

import sys


class EngineShadowedError(ImportError):
    """The importable ``engine`` package is not pytest-halo's."""


def check_engine() -> None:
    """Raise ``EngineShadowedError`` (one line) unless ``import engine`` gives pytest-halo's engine."""
    try:
        import engine
    except Exception as exc:  # noqa: BLE001 - a foreign engine may fail to import in any way
        raise EngineShadowedError(
            f"cannot import pytest-halo's 'engine' package ({type(exc).__name__}: {exc}); "
            "reinstall pytest-halo"
        ) from None
    if getattr(engine, "PYTEST_HALO_ENGINE", False) is not True:
        where = getattr(engine, "__file__", None) or ", ".join(getattr(engine, "__path__", []) or ["?"])
        raise EngineShadowedError(
            f"the 'engine' package imported from {where} is not pytest-halo's: another package "
            "(e.g. halo-engine, or a local engine/ directory) uses the same top-level name; "
            "uninstall it or run halo from its own virtualenv"
        )


def halo_main() -> int:
    """The ``halo`` console script: check the engine, then run ``engine.cli.main``."""
    try:
        check_engine()
    except EngineShadowedError as exc:
        print(f"halo: error: {exc}", file=sys.stderr)
        return 2
    from engine.cli import main

    return main()
