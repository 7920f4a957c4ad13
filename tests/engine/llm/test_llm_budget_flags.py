"""Prices, the context window and the compaction threshold from flags: ``--price``, ``--context-tokens``,
``--compact-at`` (the plugin's ``--halo-*`` forms are in tests/pytest_halo/test_halo_options.py)."""

from __future__ import annotations

import pytest
from scripted_server import calls, role_of, text, turn_of

from engine.cli import main
from engine.findings import Findings
from engine.llm.pricing import budget_notice, context_tokens_of, parse_prices, price_of
from engine.llm.settings import EngineSettings


@pytest.mark.parametrize(("model", "price"), [
    ("openai/gpt-4o-mini", (0.15, 0.60)),             # a provider prefix falls back to the bare model
    ("anthropic/claude-3.5-sonnet", (3.00, 15.00)),   # OpenRouter's dotted version = the dashed one
    ("openrouter/anthropic/claude-3.5-sonnet", (3.00, 15.00)),
    ("gpt-4o-2024-08-06", (2.50, 10.00)),             # a dated snapshot inherits its family
    ("gpt-4.1-mini", (0.40, 1.60)),                   # the longest prefix wins over gpt-4.1
    ("qwen2.5:14b", None),                            # a local Ollama model has no list price
])
def test_price_lookup(model, price):
    assert price_of(model) == price


def test_an_override_beats_the_table_only_for_what_it_names():
    over = parse_prices(["openai/gpt-4o=9/9", "qwen2.5:14b=0/0"])
    assert price_of("openai/gpt-4o", over) == (9.0, 9.0)
    assert price_of("gpt-4o-mini", over) == (0.15, 0.60)  # an exact table entry beats the override's prefix
    assert price_of("qwen2.5:14b", over) == (0.0, 0.0)
    assert context_tokens_of("qwen2.5:14b") == 32_768 and context_tokens_of("anthropic/claude-3.5-sonnet") == 200_000


def test_budget_notice_names_every_unpriced_role():
    s = EngineSettings(model="qwen2.5:14b", synthesis_model="gpt-4o-mini", compaction_model="llama-local",
                       max_cost_usd=0.5)
    line = budget_notice(s)
    assert line is not None and "qwen2.5:14b, llama-local" in line and "gpt-4o-mini" not in line
    assert budget_notice(s.model_copy(update={"max_cost_usd": None})) is None
    priced = s.model_copy(update={"prices": parse_prices("qwen2.5:14b=0.1/0.2,llama-local=0/0")})
    assert budget_notice(priced) is None


def _simple(req, n):
    if role_of(req) == "root" and turn_of(req) == 0:
        return calls(("get_dataset_overview", {}), tokens_in=1000, tokens_out=200)
    return calls(("final_answer", {"answer": "# Report", "failure_modes": []}), tokens_in=1000, tokens_out=200)


def _args(tau_path, tmp_path, srv, *extra):
    return ["analyze", str(tau_path), "--out", str(tmp_path / "o"), "--model", "qwen2.5:14b", "--base-url", srv.url,
            "--fail-on", "never", "--no-llm-cache", *extra]


def test_max_cost_without_a_price_says_so_once_at_start(scripted, tau_path, tmp_path, capsys):
    srv = scripted(_simple)
    assert main(_args(tau_path, tmp_path, srv, "--max-cost", "0.001")) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "cannot be enforced" in ln]
    assert len(lines) == 1, err
    assert "no price known for qwen2.5:14b" in lines[0] and "--price" in lines[0]
    assert err.index("cannot be enforced") < err.index("root@0 started")  # before the first request
    f = Findings.read(tmp_path / "o" / "findings.json")
    assert f.llm is not None and f.llm.stopped_because == "finished" and f.llm.cost_usd is None
    assert any("cannot be enforced" in n for n in f.notes)


def test_price_flag_makes_max_cost_enforceable(scripted, tau_path, tmp_path, capsys):
    srv = scripted(_simple)
    # 1,200 tokens at $10 per 1M = $0.012 per request: past the $0.001 budget after the first one
    assert main(_args(tau_path, tmp_path, srv, "--max-cost", "0.001", "--price", "qwen2.5:14b=10/10")) == 0
    assert "cannot be enforced" not in capsys.readouterr().err
    f = Findings.read(tmp_path / "o" / "findings.json")
    assert f.llm is not None and f.llm.cost_usd == pytest.approx(f.llm.requests * 0.012)
    assert f.llm.stopped_because == "max_cost"


def _long_script(req, n):
    if role_of(req) == "compaction":
        return text("summary of an old result", tokens_in=50, tokens_out=10)
    turn = turn_of(req)
    if turn < 4:
        return calls(("query_traces", {"limit": 20, "offset": turn * 20}))
    return calls(("final_answer", {"answer": "# Report", "failure_modes": []}))


@pytest.mark.parametrize(("flags", "compacts"), [([], False), (["--context-tokens", "20000", "--compact-at", "0.2"], True)])
def test_context_tokens_and_compact_at_drive_compaction(scripted, tau_path, tmp_path, capsys, flags, compacts):
    srv = scripted(_long_script)
    assert main(_args(tau_path, tmp_path, srv, *flags)) == 0
    assert bool(srv.by_role("compaction")) is compacts
    assert ("compacted" in capsys.readouterr().err) is compacts


@pytest.mark.parametrize(("flags", "message"), [
    (["--price", "qwen2.5:14b"], "--price 'qwen2.5:14b': expected MODEL=IN/OUT in USD per 1M tokens"),
    (["--price", "m=1/x"], "--price 'm=1/x': IN and OUT must be numbers"),
    (["--price", "m=-1/2"], "--price 'm=-1/2': prices must be finite and not negative"),
    (["--compact-at", "1.5"], "--compact-at: Input should be less than or equal to 1"),
    (["--compact-at", "0"], "--compact-at: Input should be greater than 0"),
    (["--context-tokens", "0"], "--context-tokens: Input should be greater than 0"),
])
def test_bad_values_are_one_line_errors(tau_path, tmp_path, capsys, flags, message):
    args = ["analyze", str(tau_path), "--out", str(tmp_path / "o"), "--model", "m", "--base-url", "http://x/v1"]
    assert main([*args, *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"halo analyze: error: {message}"] or (len(err) == 1 and err[0].startswith(
        f"halo analyze: error: {message}")), err


def test_the_flags_need_a_model(tau_path, tmp_path, capsys):
    assert main(["analyze", str(tau_path), "--out", str(tmp_path / "o"), "--price", "m=1/2"]) == 2
    assert "--price need --model M" in capsys.readouterr().err
