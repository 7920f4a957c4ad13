"""The interface every output writer implements, and the default set the orchestrator runs.

A publisher reads the final findings (after the gate) and writes files into the output folder.
It never changes the findings. One publisher failing costs a note, never the other outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from engine.findings import Findings


@runtime_checkable
class Publisher(Protocol):
    """Writes one kind of output from the findings; returns {name: path} of what it wrote."""

    name: str

    def publish(self, findings: Findings, out_dir: Path) -> dict[str, Path]: ...


def check_publisher(obj: object) -> Publisher:
    """Refuse at registration an object that does not implement ``Publisher``."""
    if not isinstance(obj, Publisher) or not isinstance(getattr(obj, "name", None), str):
        raise TypeError(f"{type(obj).__name__} is not a Publisher (needs a str `name` and `publish(findings, out_dir)`)")
    return obj
