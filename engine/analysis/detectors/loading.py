"""Find user detectors for ``halo analyze``: ``--detector module:attr`` and the ``pytest_halo.detectors`` entry points.

An entry or spec names a detector object, a detector class (instantiated without arguments) or a
function returning one detector or a list of them. Each is checked (``api.check_detector``) here,
before any trace is read.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from engine.analysis.detectors.api import Detector, check_detector

ENTRY_POINT_GROUP = "pytest_halo.detectors"


class DetectorLoadError(ValueError):
    """A detector spec or entry point that cannot be loaded: one line for the user."""


def _resolve(obj: Any, origin: str) -> list[Detector]:
    if isinstance(obj, type):
        obj = obj()
    elif callable(obj) and not hasattr(obj, "name"):
        obj = obj()
    items = list(obj) if isinstance(obj, list | tuple) else [obj]
    try:
        return [check_detector(item) for item in items]
    except TypeError as exc:
        raise DetectorLoadError(f"{origin}: {exc}") from None


def load_spec(spec: str) -> list[Detector]:
    """``package.module:attr`` → detectors."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise DetectorLoadError(f"--detector {spec!r}: expected module:attribute")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix, in one line
        raise DetectorLoadError(f"--detector {spec}: cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise DetectorLoadError(f"--detector {spec}: {module_name} has no attribute {attr}")
        obj = getattr(obj, part)
    return _resolve(obj, f"--detector {spec}")


def load_entry_points() -> list[Detector]:
    """Every installed distribution's ``pytest_halo.detectors`` entry points."""
    out: list[Detector] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001
            raise DetectorLoadError(f"entry point {ep.name} ({ep.value}): {type(exc).__name__}: {exc}") from None
        out.extend(_resolve(obj, f"entry point {ep.name}"))
    return out
