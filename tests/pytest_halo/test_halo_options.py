"""Option resolution: CLI > env > ini > [tool.halo] > default, in-process (no subprocess needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_halo.options import resolve_config
from pytest_halo.optspec import is_enabled


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for k in list(os.environ):
        if k.startswith("HALO"):
            monkeypatch.delenv(k)


def test_defaults_and_disabled(pytester):
    config = pytester.parseconfig()
    assert not is_enabled(config)
    cfg = resolve_config(config)
    assert cfg.fail_on == "new" and cfg.baseline is None and not cfg.strict
    assert cfg.dir == Path(config.invocation_params.dir) / ".halo"
    assert not cfg.llm.configured and cfg.llm.api_key_env == "OPENAI_API_KEY"


def test_precedence_cli_env_ini_pyproject(pytester, monkeypatch):
    pytester.makepyprojecttoml("""
[tool.halo]
enabled = true
fail_on = "any"
dir = "from-pyproject"
model = "pyproject-model"
strict = true
""")
    pytester.makeini("[pytest]\nhalo_fail_on = regressed\nhalo_dir = from-ini\n")
    # pytest.ini wins the rootdir search, so [tool.halo] is read from the same rootdir's pyproject
    config = pytester.parseconfig()
    assert is_enabled(config)
    cfg = resolve_config(config)
    assert cfg.fail_on == "regressed" and cfg.dir == pytester.path / "from-ini"
    assert cfg.llm.model == "pyproject-model" and cfg.strict
    assert cfg.sources["fail_on"] == "ini" and cfg.sources["model"] == "pyproject"

    monkeypatch.setenv("HALO_FAIL_ON", "never")
    monkeypatch.setenv("HALO_STRICT", "0")
    monkeypatch.setenv("HALO_LLM_TIMEOUT", "30")
    cfg = resolve_config(pytester.parseconfig())
    assert cfg.fail_on == "never" and not cfg.strict and cfg.llm.timeout_s == 30.0

    cfg = resolve_config(pytester.parseconfig("--halo-fail-on", "new", "--halo-dir", "cli-dir",
                                              "--halo-model", "cli-model", "--halo-base-url", "http://x/v1"))
    assert cfg.fail_on == "new" and cfg.llm.model == "cli-model" and cfg.llm.base_url == "http://x/v1"
    assert cfg.dir == Path(pytester.parseconfig().invocation_params.dir) / "cli-dir"


def test_env_enables_and_disables(pytester, monkeypatch):
    pytester.makeini("[pytest]\nhalo = true\n")
    assert is_enabled(pytester.parseconfig())
    monkeypatch.setenv("HALO", "0")
    assert not is_enabled(pytester.parseconfig())
    assert is_enabled(pytester.parseconfig("--halo"))


def test_bad_values_are_usage_errors(pytester, monkeypatch):
    monkeypatch.setenv("HALO_FAIL_ON", "sometimes")
    with pytest.raises(ValueError):
        resolve_config(pytester.parseconfig())
    monkeypatch.setenv("HALO_FAIL_ON", "new")
    monkeypatch.setenv("HALO_STRICT", "maybe")
    with pytest.raises(ValueError, match="strict"):
        resolve_config(pytester.parseconfig())


def test_llm_price_context_and_compaction_options(pytester, monkeypatch):
    """--halo-price (repeatable) / HALO_PRICE (comma-separated) / ini / [tool.halo] reach the engine's settings."""
    from engine.llm.settings import from_plugin

    pytester.makepyprojecttoml("""
[tool.halo]
price = { "qwen2.5:14b" = [0, 0] }
compact_at = 0.5
""")
    pytester.makeini("[pytest]\nhalo_context_tokens = 48000\n")
    cfg = resolve_config(pytester.parseconfig())
    assert cfg.llm.prices == {"qwen2.5:14b": (0.0, 0.0)} and cfg.sources["price"] == "pyproject"
    assert cfg.llm.context_tokens == 48000 and cfg.llm.compaction_threshold == 0.5

    monkeypatch.setenv("HALO_PRICE", "anthropic/claude-3.5-sonnet=3/15, qwen2.5:14b=0.1/0.2")
    monkeypatch.setenv("HALO_COMPACT_AT", "0.7")
    cfg = resolve_config(pytester.parseconfig())
    assert cfg.llm.prices == {"anthropic/claude-3.5-sonnet": (3.0, 15.0), "qwen2.5:14b": (0.1, 0.2)}
    assert cfg.llm.compaction_threshold == 0.7 and cfg.sources["compact_at"] == "env"

    cfg = resolve_config(pytester.parseconfig("--halo-model", "m", "--halo-price", "m=1/2", "--halo-price",
                                              "other=0.5/1.5", "--halo-context-tokens", "8000",
                                              "--halo-compact-at", "0.25", "--halo-diff-base", "main"))
    assert cfg.llm.prices == {"m": (1.0, 2.0), "other": (0.5, 1.5)} and cfg.sources["price"] == "cli"
    engine = from_plugin(cfg.llm)
    assert engine.prices == {"m": (1.0, 2.0), "other": (0.5, 1.5)}
    assert engine.context_tokens == 8000 and engine.compaction_threshold == 0.25
    assert engine.repo_path == pytester.path and engine.diff_base == "main"


@pytest.mark.parametrize(("args", "env", "match"), [
    (["--halo-price", "gpt-4o"], {}, r"prices: 'gpt-4o': expected MODEL=IN/OUT.*\(from cli\)"),
    (["--halo-price", "gpt-4o=cheap/10"], {}, r"IN and OUT must be numbers"),
    ([], {"HALO_PRICE": "a=1/2,b=-1/2"}, r"prices: 'b=-1/2': prices must be finite and not negative \(from env\)"),
    (["--halo-context-tokens", "0"], {}, r"context_tokens: expected a positive integer, got 0 \(from cli\)"),
    (["--halo-context-tokens", "lots"], {}, r"context_tokens: expected an integer"),
    ([], {"HALO_COMPACT_AT": "1.5"}, r"compaction_threshold: expected a fraction in \(0, 1\], got 1.5 \(from env\)"),
])
def test_bad_llm_budget_options_are_one_line_errors(pytester, monkeypatch, args, env, match):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValueError, match=match) as info:
        resolve_config(pytester.parseconfig(*args))
    assert "\n" not in str(info.value) and str(info.value).startswith("halo: ")
