"""Baseline per branch: ``halo github baseline save`` stages it, ``fetch`` finds the base branch's newest one."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import FAST, make_findings
from fake_github import FakeGitHub, zip_of

from engine.cli import main
from engine.publish.github import baseline
from engine.publish.github.client import make_github

NAME = "halo-baseline-halo"


def _outputs(env: dict[str, str]) -> dict[str, str]:
    lines = Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _findings_bytes(tag: str) -> bytes:
    f = make_findings(baseline=False)
    f.notes = [tag]
    return f.model_dump_json().encode()


def test_fetch_takes_the_newest_unexpired_artifact_of_the_base_branch(tmp_path, fake_github: FakeGitHub) -> None:
    fake_github.add_run(branch="main", artifacts={NAME: {"findings.json": _findings_bytes("oldest")}})
    fake_github.add_run(branch="main", artifacts={NAME: {"findings.json": _findings_bytes("wanted"),
                                                         "signatures.json": b"[]"}})
    fake_github.add_run(branch="main", conclusion="failure", artifacts={NAME: {"findings.json": b"{}"}})
    fake_github.add_run(branch="main", artifacts={"halo-report-halo": {"findings.json": b"{}"}})
    fake_github.add_run(branch="main", artifacts={NAME: {"findings.json": b"{}"}}, expired=True)
    fake_github.add_run(branch="feature", artifacts={NAME: {"findings.json": _findings_bytes("other branch")}})
    gh = make_github(fake_github.base_url, "ghs_token", FAST)
    found = baseline.fetch(gh, fake_github.repo, token="ghs_token", branch="main", name=NAME, out_dir=tmp_path / "b")
    assert found is not None
    data = json.loads((tmp_path / "b" / "findings.json").read_text())
    assert data["notes"] == ["wanted"]
    assert (tmp_path / "b" / "signatures.json").read_text() == "[]"
    assert fake_github.blob_auth == [None]  # the token never goes to the storage host
    assert fake_github.calls("GET", r"^/user$") == 0


def test_archive_members_other_than_the_known_files_are_ignored(tmp_path) -> None:
    data = zip_of({"../escape.json": b"x", "sub/findings.json": b"x", "findings.json": b"{}", "run.sh": b"x"})
    written = baseline.extract(data, tmp_path / "out")
    assert [p.name for p in written] == ["findings.json"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["findings.json"]
    assert not (tmp_path / "escape.json").exists()


def test_extract_never_writes_through_a_symlink(tmp_path) -> None:
    import pytest

    from engine.safe_io import UnsafePathError

    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.json"
    victim.write_text("precious")
    (out / "findings.json").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symlink"):
        baseline.extract(zip_of({"findings.json": b"{}"}), out)
    assert victim.read_text() == "precious"
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_cli_fetch_on_a_pull_request_sets_outputs(tmp_path, fake_github, actions_env, monkeypatch, capsys) -> None:
    env = actions_env(base="release")
    fake_github.add_run(branch="release", artifacts={NAME: {"findings.json": _findings_bytes("release")}})
    fake_github.add_run(branch="main", artifacts={NAME: {"findings.json": _findings_bytes("main")}})
    monkeypatch.chdir(tmp_path)
    assert main(["github", "baseline", "fetch", "--out", "bl"]) == 0
    out = _outputs(env)
    assert out["found"] == "true" and out["path"] == str(Path("bl") / "findings.json")
    assert json.loads((tmp_path / "bl" / "findings.json").read_text())["notes"] == ["release"]


def test_cli_fetch_without_a_baseline_says_how_to_make_one(tmp_path, fake_github, actions_env, monkeypatch,
                                                           capsys) -> None:
    env = actions_env()
    monkeypatch.chdir(tmp_path)
    assert main(["github", "baseline", "fetch", "--out", "bl"]) == 0
    assert _outputs(env)["found"] == "false"
    out = capsys.readouterr().out
    assert "::warning title=pytest-halo::no baseline yet for main" in out and "push to main" in out


def test_cli_fetch_refused_fails_closed(tmp_path, fake_github, actions_env, monkeypatch, capsys) -> None:
    env = actions_env()
    fake_github.fault("GET", r"/actions/runs$", 403, "Resource not accessible by integration")
    monkeypatch.chdir(tmp_path)
    assert main(["github", "baseline", "fetch"]) == 3  # cannot tell whether a baseline exists: never a silent pass
    assert _outputs(env)["found"] == "false"
    out = capsys.readouterr().out
    assert out.count("::error title=pytest-halo::") == 1 and "actions: read" in out and "baseline: none" in out


def test_cli_fetch_of_a_broken_baseline_artifact_fails_closed(tmp_path, fake_github, actions_env, monkeypatch,
                                                              capsys) -> None:
    env = actions_env()
    fake_github.add_run(branch="main", artifacts={NAME: {"notes.txt": b"no findings here"}})
    monkeypatch.chdir(tmp_path)
    assert main(["github", "baseline", "fetch", "--out", "bl"]) == 3
    assert _outputs(env)["found"] == "false" and not (tmp_path / "bl" / "findings.json").exists()
    assert "holds no findings.json" in capsys.readouterr().out


def test_cli_save_stages_on_a_default_branch_push_only(tmp_path, fake_github, actions_env, monkeypatch) -> None:
    halo = tmp_path / ".halo"
    halo.mkdir()
    make_findings(baseline=False).write(halo / "findings.json")
    (halo / "signatures.json").write_text("[]")
    (halo / "traces.jsonl").write_text("{}\n")
    monkeypatch.chdir(tmp_path)

    env = actions_env()  # a pull request
    assert main(["github", "baseline", "save"]) == 0
    assert _outputs(env) == {"saved": "false"} and not (tmp_path / ".halo-baseline-upload").exists()

    env = actions_env("push", ref="refs/heads/main")
    Path(env["GITHUB_OUTPUT"]).write_text("")
    assert main(["github", "baseline", "save", "--include-traces"]) == 0
    out = _outputs(env)
    assert out["saved"] == "true" and out["name"] == NAME
    staged = sorted(p.name for p in Path(out["dir"]).iterdir())
    assert staged == ["findings.json", "signatures.json", "traces.jsonl"]

    env = actions_env("push", ref="refs/heads/feature")
    Path(env["GITHUB_OUTPUT"]).write_text("")
    assert main(["github", "baseline", "save"]) == 0
    assert _outputs(env)["saved"] == "false"
