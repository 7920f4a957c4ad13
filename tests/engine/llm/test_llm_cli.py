"""``halo analyze --model`` and halo-engine's ``halo PATH -p PROMPT`` form, against the scripted server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from scripted_server import calls, role_of, tool_results, turn_of
from test_llm_tau_bench import tau_script

from engine.cli import main
from engine.findings import Findings


def _simple(req, n):
    if role_of(req) == "root" and turn_of(req) == 0:
        return calls(("get_dataset_overview", {}))
    return calls(("final_answer", {"answer": "# Report\nAll good.", "failure_modes": []}))


def test_analyze_with_a_model_merges_llm_modes(scripted, tau_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    srv = scripted(tau_script)
    out = tmp_path / "out"
    code = main(["analyze", str(tau_path), "--out", str(out), "--model", "gpt-4o-mini", "--base-url", srv.url,
                 "--api-key", "k", "--max-parallel", "2", "--fail-on", "never", "-p", "find payment bugs"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert f"halo: LLM gpt-4o-mini · {len(srv.requests)} requests (0 cached)" in stdout
    assert "find payment bugs" in srv.requests[0]["messages"][1]["content"]
    f = Findings.read(out / "findings.json")
    assert any(m.source in ("llm", "both") and m.signature for m in f.failure_modes)
    assert (out / "engine-traces.jsonl").is_file()
    # a rerun over the same traces is answered by the cache: no request reaches the server
    n = len(srv.requests)
    assert main(["analyze", str(tau_path), "--out", str(out), "--model", "gpt-4o-mini", "--base-url", srv.url,
                 "--api-key", "k", "--max-parallel", "2", "--fail-on", "never", "-p", "find payment bugs"]) == 0
    assert len(srv.requests) == n
    assert f"0 requests ({n} cached)" in capsys.readouterr().out


def test_provider_down_keeps_the_deterministic_report(tau_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    args = ["analyze", str(tau_path), "--out", str(tmp_path / "out"), "--model", "gpt-4o-mini",
            "--base-url", "http://127.0.0.1:9/v1", "--api-key", "k", "--fail-on", "never", "--llm-max-retries", "1"]
    assert main(args) == 0
    stdout = capsys.readouterr().out
    failed = [line for line in stdout.splitlines() if "LLM analysis failed" in line]
    assert len(failed) == 1 and "cannot reach the provider" in failed[0]
    f = Findings.read(tmp_path / "out" / "findings.json")
    assert f.failure_modes and all(m.source == "detector" for m in f.failure_modes)
    assert (tmp_path / "out" / "report.md").is_file()
    assert main([*args, "--strict"]) == 3


def test_halo_engine_form(scripted, tau_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    srv = scripted(_simple)
    code = main([str(tau_path), "-p", "what fails?", "--model", "m1", "--base-url", srv.url, "--api-key", "k",
                 "-H", "X-Org: acme", "--max-depth", "1", "--max-turns", "5", "--temperature", "0.2",
                 "--max-output-tokens", "300", "--reasoning-effort", "low", "--synthesis-model", "m2",
                 "--compaction-model", "m3", "--max-parallel", "3"])
    out = capsys.readouterr().out
    assert code == 0 and "# Report" in out and "All good." in out
    assert (tmp_path / ".halo" / "findings.json").is_file()
    req = srv.requests[0]
    assert req["model"] == "m1" and req["temperature"] == 0.2 and req["max_tokens"] == 300
    assert req["reasoning_effort"] == "low" and srv.headers[0]["x-org"] == "acme"
    assert "maximum_depth=1" in req["messages"][0]["content"]


def test_printed_answer_and_failure_line_are_cleaned(scripted, tau_path, tmp_path, capsys, monkeypatch):
    from scripted_server import http_error

    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    secret = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4"
    answer = f"\x1b]8;;http://evil\x07done\x1b[2J key {secret}"
    srv = scripted(lambda req, n: calls(("final_answer", {"answer": answer, "failure_modes": []})))
    assert main([str(tau_path), "-p", "q", "--model", "m1", "--base-url", srv.url, "--api-key", "k"]) == 0
    out = capsys.readouterr().out
    assert "done" in out and "\x1b" not in out and secret not in out
    down = scripted(lambda req, n: http_error(400, f"\x1b[31mno such model {secret}"))
    assert main([str(tau_path), "-p", "q", "--model", "m1", "--base-url", down.url, "--api-key", "k"]) == 0
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if "LLM analysis failed" in line]
    assert len(failed) == 1 and "no such model" in failed[0], out
    assert "\x1b" not in out and secret not in out


def test_api_key_flag_wins_over_the_environment(scripted, tau_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    srv = scripted(_simple)
    base = ["analyze", str(tau_path), "--out", str(tmp_path / "o"), "--model", "m", "--base-url", srv.url,
            "--no-llm-cache", "--fail-on", "never"]
    assert main(base) == 0 and srv.headers[-1]["authorization"] == "Bearer from-env"
    assert main([*base, "--api-key", "from-flag"]) == 0 and srv.headers[-1]["authorization"] == "Bearer from-flag"


def test_llm_flags_without_a_model_are_one_line(tau_path, tmp_path, capsys):
    assert main(["analyze", str(tau_path), "--out", str(tmp_path / "o"), "-p", "hi", "--max-cost", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["halo analyze: error: --prompt, --max-cost need --model M (the LLM engine is off without a model)"]


@pytest.mark.parametrize(("flags", "named"), [(["--max-cost", "-1"], "--max-cost"),
                                               (["--llm-timeout", "0"], "--llm-timeout"),
                                               (["--max-depth", "9"], "--max-depth")])
def test_a_bad_llm_value_names_the_flag_given(tau_path, tmp_path, capsys, flags, named):
    args = ["analyze", str(tau_path), "--out", str(tmp_path / "o"), "--model", "m", "--base-url", "http://x/v1"]
    assert main([*args, *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"halo analyze: error: {named}: "), err


def test_model_without_openai_names_the_extra(tau_path, tmp_path):
    code = ("import sys; sys.modules['openai'] = None; from engine.cli import main; "
            f"sys.exit(main(['analyze', {str(tau_path)!r}, '--out', {str(tmp_path / 'o')!r}, '--model', 'm']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ('halo analyze: error: the LLM engine needs the openai package: '
                                   'pip install "pytest-halo[llm]"')


def test_record_then_replay_from_the_cli(scripted, tau_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    srv = scripted(_simple)
    log = tmp_path / "rec.jsonl"
    base = ["analyze", str(tau_path), "--out", str(tmp_path / "o"), "--model", "m", "--no-llm-cache",
            "--llm-replay", str(log), "--fail-on", "never", "--api-key", "k"]
    assert main([*base, "--base-url", srv.url]) == 0
    recorded = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(recorded) == len(srv.requests) == 2
    capsys.readouterr()
    assert main([*base, "--base-url", "http://127.0.0.1:9/v1", "--strict"]) == 0  # replayed: no server needed
    assert "0 requests (2 cached)" in capsys.readouterr().out


def test_repo_path_offers_the_code_tools(scripted, tau_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    repo = tmp_path / "agent"
    repo.mkdir()
    (repo / "tools.py").write_text("def book_reservation():\n    raise ValueError('payment amount does not add up')\n")

    def script(req, n):
        if turn_of(req) == 0:
            return calls(("grep_files", {"pattern": "payment amount"}))
        return calls(("final_answer", {"answer": tool_results(req, "grep_files")[0]}))

    srv = scripted(script)
    assert main([str(tau_path), "-p", "where?", "--model", "m", "--base-url", srv.url, "--api-key", "k",
                 "--out", str(tmp_path / "o"), "--repo-path", str(repo)]) == 0
    names = [t["function"]["name"] for t in srv.requests[0]["tools"]]
    assert {"list_files", "grep_files", "read_file"} <= set(names)
    assert "tools.py:2" in capsys.readouterr().out
