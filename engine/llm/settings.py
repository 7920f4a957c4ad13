"""Everything the LLM engine can be told: models per role, provider, limits, budgets, cache.

One pydantic model so the CLI, the pytest plugin and the Python API build the same thing;
``from_plugin`` converts the plugin's ``LLMSettings`` without importing it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
NO_MODEL = frozenset({"", "none", "off"})

DEFAULT_PROMPT = (
    "Find the systemic failure modes of the agent in these traces: patterns that recur across runs or "
    "separate failing tests from passing ones. Ground every mode in real trace ids and give each a signature "
    "that re-finds it."
)


class EngineSettings(BaseModel):
    """Settings of one engine run. ``model`` is the root model; the other roles default to it."""

    model_config = ConfigDict(extra="forbid")

    model: str
    subagent_model: str | None = None
    synthesis_model: str | None = None
    compaction_model: str | None = Field(
        None, description="model for summaries of old tool results; 'none' = deterministic excerpts only"
    )
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    headers: dict[str, str] = Field(default_factory=dict)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_output_tokens: int | None = Field(None, gt=0)
    reasoning_effort: ReasoningEffort | None = None
    parallel_tool_calls: bool = True
    refusal_retries: int = Field(0, ge=0, le=5)

    prompt: str = DEFAULT_PROMPT
    max_depth: int = Field(2, ge=0, le=6)
    max_turns: int = Field(20, ge=1, description="model requests per agent that got an answer; never re-armed")
    max_parallel: int = Field(4, ge=1, description="subagents running at once, per depth")
    max_tokens: int | None = Field(None, gt=0, description="run-wide tokens (in + out)")
    max_cost_usd: float | None = Field(None, gt=0)
    timeout_s: float | None = Field(None, gt=0, description="run-wide wall clock budget")
    request_timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(6, ge=0)
    retry_base_s: float = Field(1.0, ge=0)
    retry_max_s: float = Field(30.0, ge=0)

    tool_result_bytes: int = Field(16 * 1024, ge=1024, description="byte budget of every tool result")
    compaction_threshold: float = Field(0.6, gt=0.0, le=1.0, description="share of the context window")
    context_tokens: int | None = Field(None, gt=0, description="override the context-size table")
    keep_recent_results: int = Field(2, ge=0, description="tool results never compacted (the newest)")
    context_sizes: dict[str, int] = Field(default_factory=dict, description="extra/overriding context sizes")
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="extra/overriding USD per 1M tokens (input, output)"
    )
    synthesis_max_traces: int = Field(10, ge=1)
    synthesis_max_bytes: int = Field(48 * 1024, ge=1024)

    cache: bool = True
    cache_dir: Path | None = None
    replay: Path | None = Field(None, description="record into FILE when absent, replay from it when present")
    repo_path: Path | None = None
    diff_base: str | None = Field(None, description="git ref of the change under review (else GITHUB_BASE_REF)")
    run_code: bool = Field(True, description="offer run_code when the sandbox is set up (halo sandbox setup)")
    strict: bool = False

    @field_validator("headers", mode="before")
    @classmethod
    def _headers(cls, v: Any) -> Any:
        return dict(v or {})

    @field_validator("prices", mode="before")
    @classmethod
    def _prices(cls, v: Any) -> Any:
        """``MODEL=IN/OUT`` strings (a list, or one comma-separated string) are accepted as well as a mapping."""
        if isinstance(v, (str, list, tuple)):
            from engine.llm.pricing import parse_prices

            return parse_prices(v)
        return v

    @field_validator("prices")
    @classmethod
    def _prices_valid(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        import math

        for model, price in v.items():
            if not all(math.isfinite(p) and p >= 0 for p in price):
                raise ValueError(f"price of {model}: USD per 1M tokens must be finite and not negative")
        return v

    # ------------------------------------------------------------ resolved roles
    @property
    def root_model(self) -> str:
        return self.model

    @property
    def sub_model(self) -> str:
        return self.subagent_model or self.model

    @property
    def synth_model(self) -> str:
        return self.synthesis_model or self.model

    @property
    def compact_model(self) -> str | None:
        """The compaction model, or None for deterministic excerpts."""
        if self.compaction_model is not None and self.compaction_model.strip().lower() in NO_MODEL:
            return None
        return self.compaction_model or self.model

    def resolved_api_key(self) -> str | None:
        """``api_key`` wins over the environment variable it would otherwise come from."""
        return self.api_key or os.environ.get(self.api_key_env or "OPENAI_API_KEY") or None

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        from engine.traces.index_cache import default_cache_dir

        return default_cache_dir() / "llm"


# the plugin's LLMSettings fields that carry over under the same name
_PLUGIN_FIELDS = ("base_url", "api_key_env", "timeout_s", "max_cost_usd", "prompt", "max_depth", "max_turns",
                  "max_tokens", "replay", "strict", "prices", "context_tokens", "compaction_threshold", "repo_path",
                  "diff_base")


def from_plugin(llm: Any) -> EngineSettings:
    """The engine's settings from the plugin's ``LLMSettings`` (or an ``EngineSettings`` / mapping)."""
    if isinstance(llm, EngineSettings):
        return llm
    if isinstance(llm, dict):
        return EngineSettings.model_validate(llm)
    data = llm.model_dump() if hasattr(llm, "model_dump") else dict(vars(llm))
    if not data.get("model"):
        raise ValueError("no model configured")
    out: dict[str, Any] = {"model": data["model"]}
    for name in _PLUGIN_FIELDS:
        value = data.get(name)
        if value is not None and value != "":
            out[name] = value
    return EngineSettings.model_validate(out)
