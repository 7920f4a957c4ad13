"""pytest-halo: capture agent traces from pytest runs, find systemic failure modes, gate on new ones.

The manual span API (``trace_agent``, ``trace_llm``, ``trace_tool``) is exported lazily so
that importing the package (as pytest does for the plugin) stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["trace_agent", "trace_llm", "trace_tool", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("trace_agent", "trace_llm", "trace_tool"):
        from pytest_halo.capture import manual

        return getattr(manual, name)
    raise AttributeError(name)
