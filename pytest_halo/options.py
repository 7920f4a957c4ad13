"""The resolved halo configuration (built only when halo is enabled).

Plain dataclasses validated by hand, not pydantic models: ``pytest_configure`` builds one in
every run with ``--halo``, and the first pydantic model class costs 0.05-0.15 s (pydantic's
lazily imported schema machinery), which a span-heavy suite's capture budget cannot carry.
The checks are the ones a model would make: types coerced from the CLI/env/ini strings,
``fail_on`` one of its choices, unknown fields refused; a bad value raises ``ValueError``
naming the field (``plugin`` turns it into a usage error).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pytest_halo.optspec import OPTS, parse_bool, resolve_raw

FAIL_ON = ("new", "regressed", "any", "never")


def _str(name: str, v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    raise ValueError(f"{name}: expected a string, got {v!r}")


def _number(name: str, v: Any, kind: type) -> Any:
    """``v`` as ``kind`` (int or float); numeric strings are parsed, an int must be whole."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError(f"{name}: expected a number, got {v!r}")
    if isinstance(v, str):
        text = v.strip()
        try:
            v = int(text) if kind is int else float(text)
        except ValueError:
            raise ValueError(f"{name}: expected {'an integer' if kind is int else 'a number'}, got {v!r}") from None
    if kind is int:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, int):
            return v
        raise ValueError(f"{name}: expected an integer, got {v!r}")
    if isinstance(v, (int, float)):
        return float(v)
    raise ValueError(f"{name}: expected a number, got {v!r}")


def _path(name: str, v: Any) -> Path | None:
    if v is None or isinstance(v, Path):
        return v
    if isinstance(v, str):
        return Path(v)
    raise ValueError(f"{name}: expected a path, got {v!r}")


def _prices(name: str, v: Any) -> dict[str, tuple[float, float]] | None:
    """``MODEL=IN/OUT`` specs (a list from repeated flags, a comma-separated string from env/ini, or a
    ``[tool.halo] price`` table of ``model = "IN/OUT"`` or ``[IN, OUT]``)."""
    if v is None:
        return None
    from engine.llm.pricing import parse_prices  # no pydantic behind it
    if isinstance(v, dict):
        v = [f"{k}={'/'.join(map(str, p)) if isinstance(p, (list, tuple)) else p}" for k, p in v.items()]
    if isinstance(v, list):
        v = [x for item in v for x in str(item).split(",")]
    if not isinstance(v, (str, list)):
        raise ValueError(f"{name}: expected MODEL=IN/OUT entries, got {v!r}")
    try:
        return parse_prices(v)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _bool(name: str, v: Any) -> bool:
    b = parse_bool(v)
    if b is None:
        raise ValueError(f"{name}: expected a boolean, got {v!r}")
    return b


@dataclass
class LLMSettings:
    """Settings of the LLM analysis engine; ``model`` unset means deterministic analysis only."""

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
    prices: dict[str, tuple[float, float]] | None = None
    context_tokens: int | None = None
    compaction_threshold: float | None = None
    repo_path: Path | None = None  # the project under test and the ref its change is compared with,
    diff_base: str | None = None  # copied from ``HaloConfig`` for the LLM's suspected_change checks

    def __post_init__(self) -> None:
        self.model, self.base_url, self.prompt = (_str("model", self.model), _str("base_url", self.base_url),
                                                  _str("prompt", self.prompt))
        key_env = _str("api_key_env", self.api_key_env)
        if key_env is None:
            raise ValueError("api_key_env: expected a string, got None")
        self.api_key_env = key_env
        self.timeout_s = _number("timeout_s", self.timeout_s, float)
        self.max_cost_usd = _number("max_cost_usd", self.max_cost_usd, float)
        self.max_depth = _number("max_depth", self.max_depth, int)
        self.max_turns = _number("max_turns", self.max_turns, int)
        self.max_tokens = _number("max_tokens", self.max_tokens, int)
        self.replay = _path("replay", self.replay)
        self.prices = _prices("prices", self.prices)
        self.context_tokens = _number("context_tokens", self.context_tokens, int)
        if self.context_tokens is not None and self.context_tokens <= 0:
            raise ValueError(f"context_tokens: expected a positive integer, got {self.context_tokens}")
        self.compaction_threshold = _number("compaction_threshold", self.compaction_threshold, float)
        if self.compaction_threshold is not None and not 0 < self.compaction_threshold <= 1:
            raise ValueError(f"compaction_threshold: expected a fraction in (0, 1], got {self.compaction_threshold}")
        self.repo_path, self.diff_base = _path("repo_path", self.repo_path), _str("diff_base", self.diff_base)

    @property
    def configured(self) -> bool:
        return bool(self.model)


@dataclass
class HaloConfig:
    """Everything the plugin needs after option resolution; paths are absolute."""

    enabled: bool = False
    dir: Path = Path(".halo")
    baseline: Path | None = None
    update_baseline: bool = False
    baseline_traces: bool = False
    fail_on: str = "new"  # one of FAIL_ON
    strict: bool = False
    skip_analysis: bool = False
    repo: Path | None = None
    diff_base: str | None = None
    hooks: Any = None  # pytest_halo.hooks.HaloHooks: user detectors and the findings hook
    llm: LLMSettings = field(default_factory=LLMSettings)
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("enabled", "update_baseline", "baseline_traces", "strict", "skip_analysis"):
            setattr(self, name, _bool(name, getattr(self, name)))
        directory = _path("dir", self.dir)
        if directory is None:
            raise ValueError("dir: expected a path, got None")
        self.dir = directory
        self.baseline, self.repo = _path("baseline", self.baseline), _path("repo", self.repo)
        self.diff_base = _str("diff_base", self.diff_base)
        fail_on = self.fail_on.strip().lower() if isinstance(self.fail_on, str) else self.fail_on
        if fail_on not in FAIL_ON:
            raise ValueError(f"fail_on: expected one of {', '.join(FAIL_ON)}, got {self.fail_on!r}")
        self.fail_on = fail_on
        if isinstance(self.llm, dict):
            self.llm = LLMSettings(**self.llm)
        elif not isinstance(self.llm, LLMSettings):
            raise ValueError(f"llm: expected LLM settings, got {self.llm!r}")


_FIELDS = {f.name for f in fields(HaloConfig)}
_BOOLS = {o.field for o in OPTS if o.is_bool}
_PATHS = {o.field for o in OPTS if o.is_path}
_LLM = {"model": "model", "base_url": "base_url", "api_key_env": "api_key_env",
        "llm_timeout": "timeout_s", "llm_max_cost": "max_cost_usd", "prompt": "prompt", "max_depth": "max_depth",
        "max_turns": "max_turns", "llm_max_tokens": "max_tokens", "llm_replay": "replay", "price": "prices",
        "context_tokens": "context_tokens", "compact_at": "compaction_threshold"}


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
    for name, (value, source) in raw.items():
        sources[name] = source
        if name in _BOOLS:
            b = parse_bool(value)
            if b is None:
                raise ValueError(f"halo: {name} must be a boolean, got {value!r} (from {source})")
            value = b
        elif name in _PATHS:
            p = Path(str(value)).expanduser()
            value = p if p.is_absolute() else (invocation if source in ("cli", "env") else root) / p
        if name in _LLM:
            llm[_LLM[name]] = value
        elif name in _FIELDS:
            data[name] = value
        else:
            raise ValueError(f"halo: unknown setting {name!r} (from {source})")
    if "dir" not in data:
        data["dir"] = invocation / ".halo"
    data.setdefault("repo", root)
    llm.update(repo_path=data["repo"], diff_base=data.get("diff_base"))
    try:
        data["llm"] = LLMSettings(**llm)
        data["sources"] = sources
        return HaloConfig(**data)
    except ValueError as exc:
        name = str(exc).split(":", 1)[0]
        key = next((k for k, v in _LLM.items() if v == name), name)
        where = f" (from {sources[key]})" if key in sources else ""
        raise ValueError(f"halo: {exc}{where}") from None
