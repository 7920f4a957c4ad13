"""The recursive LLM engine: a root agent and depth-gated subagents over the trace store.

``make_reasoner(settings)`` gives the orchestrator a ``Reasoner``; ``engine.llm.api`` is the
Python API (sync, async, and a stream of events). Needs the ``openai`` package
(``pip install "pytest-halo[llm]"``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["EngineSettings", "MISSING_OPENAI", "make_reasoner", "openai_available"]

MISSING_OPENAI = 'the LLM engine needs the openai package: pip install "pytest-halo[llm]"'


def openai_available() -> bool:
    try:
        import openai  # noqa: F401
    except ImportError:
        return False
    return True


def make_reasoner(settings: Any, *, progress: Any = None, providers: Any = None) -> Any:
    """A ``Reasoner`` from ``EngineSettings``, the plugin's ``LLMSettings`` or a mapping.

    Raises ``ValueError`` (no model) or ``ImportError`` (no openai) with one line to show.
    """
    from engine.llm.settings import from_plugin

    engine_settings = from_plugin(settings)
    if not openai_available():
        raise ImportError(MISSING_OPENAI)
    if engine_settings.base_url is None and engine_settings.replay is None and not engine_settings.resolved_api_key():
        raise ValueError(f"no API key for OpenAI: set {engine_settings.api_key_env} or pass --api-key "
                         "(a local server needs --base-url and no key)")
    from engine.llm.pricing import budget_notice
    from engine.llm.reasoner import LLMReasoner
    from engine.reasoning import check_reasoner

    notice = budget_notice(engine_settings)
    if notice and progress is not None:  # at start, before any request: the dollar cap is not what it seems
        from engine.llm.events import EngineEvent

        progress(EngineEvent("notice", data={"message": notice}))
    return check_reasoner(LLMReasoner(engine_settings, progress=progress, providers=providers))


def __getattr__(name: str) -> Any:
    """``EngineSettings`` on first use: importing ``engine.llm.pricing`` (the plugin does, to parse
    ``--halo-price``) must not import pydantic."""
    if name == "EngineSettings":
        from engine.llm.settings import EngineSettings

        return EngineSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
