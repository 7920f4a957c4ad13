"""The resolved halo configuration as a pydantic model (built only when halo is enabled)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from pytest_halo.optspec import OPTS, parse_bool, resolve_raw


class LLMSettings(BaseModel):
    """Settings of the LLM analysis engine; ``model`` unset means deterministic analysis only."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float | None = None
    max_cost_usd: float | None = None
    prompt: str | None = None
    max_depth: int | None = None
    max_turns: int | None = None
    max_tokens: int | None = None
    replay: Path | None = None

    @property
    def configured(self) -> bool:
        return bool(self.model)


class HaloConfig(BaseModel):
    """Everything the plugin needs after option resolution; paths are absolute."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    dir: Path = Path(".halo")
    baseline: Path | None = None
    update_baseline: bool = False
    baseline_traces: bool = False
    fail_on: Literal["new", "regressed", "any", "never"] = "new"
    strict: bool = False
    skip_analysis: bool = False
    repo: Path | None = None
    diff_base: str | None = None
    hooks: Any = None  # pytest_halo.hooks.HaloHooks: user detectors and the findings hook
    llm: LLMSettings = LLMSettings()
    sources: dict[str, str] = {}

    @field_validator("fail_on", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v


_BOOLS = {o.field for o in OPTS if o.is_bool}
_PATHS = {o.field for o in OPTS if o.is_path}
_LLM = {"model": "model", "base_url": "base_url", "api_key_env": "api_key_env",
        "llm_timeout": "timeout_s", "llm_max_cost": "max_cost_usd", "prompt": "prompt", "max_depth": "max_depth",
        "max_turns": "max_turns", "llm_max_tokens": "max_tokens", "llm_replay": "replay"}


def resolve_config(config: Any) -> HaloConfig:
    """Resolve CLI > env > ini > ``[tool.halo]`` > default into a ``HaloConfig``.

    Relative paths from the CLI or env are taken from the invocation directory, those from
    ini / pyproject from the rootdir (where the file that names them lives).
    """
    raw = resolve_raw(config)
    data: dict[str, Any] = {}
    llm: dict[str, Any] = {}
    sources: dict[str, str] = {}
    invocation = Path(config.invocation_params.dir)
    root = Path(config.rootpath)
    for field, (value, source) in raw.items():
        sources[field] = source
        if field in _BOOLS:
            b = parse_bool(value)
            if b is None:
                raise ValueError(f"halo: {field} must be a boolean, got {value!r} (from {source})")
            value = b
        elif field in _PATHS:
            p = Path(str(value)).expanduser()
            value = p if p.is_absolute() else (invocation if source in ("cli", "env") else root) / p
        if field in _LLM:
            llm[_LLM[field]] = value
        else:
            data[field] = value
    if "dir" not in data:
        data["dir"] = invocation / ".halo"
    data.setdefault("repo", root)
    data["llm"] = LLMSettings(**llm)
    data["sources"] = sources
    return HaloConfig(**data)
