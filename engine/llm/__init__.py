"""The recursive LLM engine: a root agent and depth-gated subagents over the trace store.

``make_reasoner(settings)`` gives the orchestrator a ``Reasoner``; ``engine.llm.api`` is the
Python API (sync, async, and a stream of events). Needs the ``openai`` package
(``pip install "pytest-halo[llm]"``).
"""

from __future__ import annotations

from typing import Any

from engine.llm.settings import EngineSettings, from_plugin

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
    engine_settings = from_plugin(settings)
    if not openai_available():
        raise ImportError(MISSING_OPENAI)
    if engine_settings.base_url is None and engine_settings.replay is None and not engine_settings.resolved_api_key():
        raise ValueError(f"no API key for OpenAI: set {engine_settings.api_key_env} or pass --api-key "
                         "(a local server needs --base-url and no key)")
    from engine.llm.reasoner import LLMReasoner
    from engine.reasoning import check_reasoner

    return check_reasoner(LLMReasoner(engine_settings, progress=progress, providers=providers))
