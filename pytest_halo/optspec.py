"""Raw option table and precedence resolution (CLI > env > ini > ``[tool.halo]`` > default).

Kept free of pydantic and OTel so that ``plugin.py`` can decide whether halo is enabled at
all without importing anything heavy (``-p no:halo`` / disabled runs stay fast).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Opt:
    """One setting: its field name, CLI flag, env var, ini key and help."""

    field: str
    flag: str
    env: str
    ini: str
    help: str
    is_bool: bool = False
    choices: tuple[str, ...] | None = None
    is_path: bool = False
    repeatable: bool = False  # the flag may be given several times; env and ini take a comma-separated list


OPTS: tuple[Opt, ...] = (
    Opt("enabled", "--halo", "HALO", "halo", "capture agent traces and analyse failure modes", is_bool=True),
    Opt("dir", "--halo-dir", "HALO_DIR", "halo_dir", "output directory (default .halo)", is_path=True),
    Opt("baseline", "--halo-baseline", "HALO_BASELINE", "halo_baseline", "baseline findings file to gate against", is_path=True),
    Opt("update_baseline", "--halo-update-baseline", "HALO_UPDATE_BASELINE", "halo_update_baseline",
        "write this run's failure modes as the new baseline", is_bool=True),
    Opt("baseline_traces", "--halo-baseline-traces", "HALO_BASELINE_TRACES", "halo_baseline_traces",
        "with --halo-update-baseline, also keep this run's traces beside the baseline so signatures found "
        "later can be gated as new", is_bool=True),
    Opt("fail_on", "--halo-fail-on", "HALO_FAIL_ON", "halo_fail_on",
        "gate: fail the run on new|regressed|any failure modes, or never (default new)",
        choices=("new", "regressed", "any", "never")),
    Opt("strict", "--halo-strict", "HALO_STRICT", "halo_strict",
        "let a failure of halo's own analysis fail the run", is_bool=True),
    Opt("skip_analysis", "--halo-skip-analysis", "HALO_SKIP_ANALYSIS", "halo_skip_analysis",
        "capture and merge only; do not run the analysis", is_bool=True),
    Opt("repo", "--halo-repo", "HALO_REPO", "halo_repo",
        "the project's source, where failure modes are located (default: the pytest rootdir)", is_path=True),
    Opt("diff_base", "--halo-diff-base", "HALO_DIFF_BASE", "halo_diff_base",
        "git ref the change under review is compared with (default: GITHUB_BASE_REF)"),
    Opt("model", "--halo-model", "HALO_MODEL", "halo_model", "LLM for the analysis engine (unset: deterministic only)"),
    Opt("base_url", "--halo-base-url", "HALO_BASE_URL", "halo_base_url", "OpenAI-compatible base URL for the LLM"),
    Opt("api_key_env", "--halo-api-key-env", "HALO_API_KEY_ENV", "halo_api_key_env",
        "name of the env var holding the LLM API key (default OPENAI_API_KEY)"),
    Opt("llm_timeout", "--halo-llm-timeout", "HALO_LLM_TIMEOUT", "halo_llm_timeout", "LLM analysis time budget, seconds"),
    Opt("llm_max_cost", "--halo-llm-max-cost", "HALO_LLM_MAX_COST", "halo_llm_max_cost", "LLM analysis cost budget, USD"),
    Opt("prompt", "--halo-prompt", "HALO_PROMPT", "halo_prompt", "what the LLM engine looks for (default: systemic failure modes)"),
    Opt("max_depth", "--halo-max-depth", "HALO_MAX_DEPTH", "halo_max_depth", "LLM subagent depth (default 2)"),
    Opt("max_turns", "--halo-max-turns", "HALO_MAX_TURNS", "halo_max_turns", "LLM model requests per agent (default 20)"),
    Opt("llm_max_tokens", "--halo-llm-max-tokens", "HALO_LLM_MAX_TOKENS", "halo_llm_max_tokens",
        "LLM analysis token budget (in + out)"),
    Opt("llm_replay", "--halo-llm-replay", "HALO_LLM_REPLAY", "halo_llm_replay",
        "record LLM answers into FILE, or replay them from FILE when it exists", is_path=True),
    Opt("price", "--halo-price", "HALO_PRICE", "halo_price",
        "MODEL=IN/OUT: USD per 1M input/output tokens of an LLM, over the built-in table (repeatable; "
        "env and ini: comma-separated)", repeatable=True),
    Opt("context_tokens", "--halo-context-tokens", "HALO_CONTEXT_TOKENS", "halo_context_tokens",
        "the LLMs' context window in tokens (default: a table by model name, else 32k)"),
    Opt("compact_at", "--halo-compact-at", "HALO_COMPACT_AT", "halo_compact_at",
        "compact old LLM tool results past this share of the context window (default 0.6)"),
)

_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f", ""})


def parse_bool(value: Any) -> bool | None:
    """Lenient bool parse; None when the value says nothing recognisable."""
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    return None


def add_options(parser: Any) -> None:
    """Register the flags and ini keys with pytest."""
    group = parser.getgroup("halo", "pytest-halo: agent failure modes")
    for o in OPTS:
        if o.is_bool:
            group.addoption(o.flag, action="store_true", default=None, dest=f"halo_{o.field}", help=o.help)
        elif o.repeatable:
            group.addoption(o.flag, action="append", default=None, dest=f"halo_{o.field}", help=o.help)
        else:
            group.addoption(o.flag, default=None, dest=f"halo_{o.field}", choices=o.choices, help=o.help)
        parser.addini(o.ini, o.help, default="")


def pyproject_table(rootpath: Path) -> dict[str, Any]:
    """``[tool.halo]`` from the rootdir's pyproject.toml (empty when absent or unreadable)."""
    path = rootpath / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        import tomllib  # type: ignore[import-not-found]
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except Exception:
        return {}
    table = data.get("tool", {}).get("halo", {})
    return {str(k).replace("-", "_"): v for k, v in table.items()} if isinstance(table, dict) else {}


def resolve_raw(config: Any) -> dict[str, tuple[Any, str]]:
    """Each field's winning raw value and its source (cli|env|ini|pyproject); unset fields are absent."""
    table = pyproject_table(Path(config.rootpath))
    out: dict[str, tuple[Any, str]] = {}
    for o in OPTS:
        cli = config.getoption(f"halo_{o.field}", None)
        if cli is not None:
            out[o.field] = (cli, "cli")
            continue
        env = os.environ.get(o.env)
        if env is not None and env.strip() != "":
            out[o.field] = (env, "env")
            continue
        try:
            ini = config.getini(o.ini)
        except (ValueError, KeyError):
            ini = ""
        if ini not in ("", None, []):
            out[o.field] = (ini, "ini")
            continue
        for key in (o.field, o.ini, o.ini.removeprefix("halo_")):
            if key in table:
                out[o.field] = (table[key], "pyproject")
                break
    return out


def is_enabled(config: Any) -> bool:
    """Whether ``--halo`` / ``HALO=1`` / ini ``halo = true`` / ``[tool.halo] enabled`` switched halo on."""
    got = resolve_raw(config).get("enabled")
    return bool(got and parse_bool(got[0]))
