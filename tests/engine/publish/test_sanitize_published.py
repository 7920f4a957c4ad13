"""Secrets and terminal escapes in trace text never reach findings.json, report.md, junit.xml or the terminal.

Real analysis over canonical spans whose tool errors carry the secrets (titles and keys are built
from them), then every published output is checked; ids hash the redacted key, so they do not
change when the secret does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from charge_traces import failing_tool_traces

from engine.findings import Findings
from engine.run import run_analysis

ENV_SECRET = "swordfish-river-stone"  # no known shape: only the environment says it is secret
HOSTILE = (
    "auth rejected: password=opensesame api_key=zebrafishkey secret=plainsecret token=tokentokentoken "
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789; Authorization: Basic dXNlcjpwYXNzd29yZA== "
    "slack xoxb-abcdefghij-klmnopqrstuv via redis://:hunterpw@cache and env " + ENV_SECRET +
    " \x1b[2J\x1b]0;pwned\x07\x1bc ping @octocat"
)
ARGS = (
    '{"user": "bob", "password": "opensesame", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", '
    '"key": "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM\\n-----END RSA PRIVATE KEY-----"}'
)
SECRETS = ("opensesame", "zebrafishkey", "plainsecret", "tokentokentoken", "ghp_", "dXNlcjpwYXNzd29yZA", "xoxb-",
           "hunterpw", ENV_SECRET, "wJalrXUtnFEMI", "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM", "\x1b", "\x07", "pwned")


def _traces(path: Path, error: str, n: int = 3) -> Path:
    return failing_tool_traces(path, n, "login", error, "test_login.py", arguments=ARGS)


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    monkeypatch.setenv("LOGIN_SERVICE_TOKEN", ENV_SECRET)
    out = run_analysis([_traces(tmp_path / "traces.jsonl", HOSTILE)], tmp_path / "out")
    return tmp_path / "out", out.summary_lines


def test_no_secret_or_escape_in_any_output(published: tuple[Path, list[str]]) -> None:
    out_dir, summary = published
    texts = {p.name: p.read_text(encoding="utf-8") for p in out_dir.iterdir() if p.suffix in (".json", ".md", ".xml")}
    texts["terminal"] = "\n".join(summary)
    assert {"findings.json", "report.md", "junit.xml"} <= set(texts)
    for name, text in texts.items():
        for secret in SECRETS:
            assert secret not in text, (name, secret)
        assert "\\u001b" not in text and "\\u0007" not in text, name  # not even JSON-escaped
    findings = Findings.read(out_dir / "findings.json")
    mode = next(m for m in findings.failure_modes if m.detector == "tool_error")
    assert "[REDACTED]" in mode.title and "[REDACTED]" in mode.key
    outside_code = re.sub(r"```+text\n.*?\n```+|`[^`\n]*`", "", texts["report.md"], flags=re.S)
    assert "@octocat" not in outside_code  # GitHub never links inside code
    assert "password=[REDACTED]" in texts["report.md"]  # readable: the placeholder is not escaped
    assert any("[REDACTED]" in line for line in summary)


def test_ids_hash_the_redacted_key_so_a_changed_secret_keeps_the_id(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGIN_SERVICE_TOKEN", ENV_SECRET)
    ids = []
    for i, secret in enumerate(("opensesame", "letmeinplease")):
        err = HOSTILE.replace("opensesame", secret)
        run_analysis([_traces(tmp_path / f"t{i}.jsonl", err)], tmp_path / f"out{i}")
        findings = Findings.read(tmp_path / f"out{i}" / "findings.json")
        ids.append(sorted((m.id, m.key) for m in findings.failure_modes if m.detector == "tool_error"))
    assert ids[0] == ids[1] and ids[0]
