"""Run a callback right after a module is first imported (to register with the Agents SDK lazily).

Importing ``agents`` costs seconds, so halo never imports it itself; but a test that imports it
inside the test function would otherwise run before our processor is registered.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from typing import Any


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, callback: Callable[[], Any]) -> None:
        self.name = name
        self.callback = callback
        self._busy = False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name or self._busy:
            return None
        self._busy = True
        try:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        finally:
            self._busy = False
        loader = getattr(spec, "loader", None) if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return None
        original = loader.exec_module
        finder = self

        def exec_module(module: Any) -> None:
            original(module)
            finder.remove()
            try:
                finder.callback()
            except Exception:  # capture must never break the import
                pass

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def call_after_import(name: str, callback: Callable[[], Any]) -> _AfterImport | None:
    """Call ``callback`` once ``name`` has been imported (now, if it already is)."""
    if name in sys.modules:
        callback()
        return None
    hook = _AfterImport(name, callback)
    sys.meta_path.insert(0, hook)
    return hook
