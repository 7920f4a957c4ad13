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
