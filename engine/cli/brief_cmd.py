"""``halo brief [FINDINGS]``: print the fix brief of a findings file (Markdown, or ``--json``).

Exit status: 0 printed (also when there is nothing to fix), 2 no such or unreadable findings file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli import UsageError, read_findings_arg

if TYPE_CHECKING:
    from engine.findings import Findings
    from engine.publish.brief import TraceLoader

DEFAULT_FINDINGS = Path(".halo/findings.json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "brief",
        help="print the fix brief for a coding agent from a findings file",
        description="Print the fix brief of a findings file: per systemic failure mode, what happens, where in "
        "the code, and commands that reproduce it and verify its fix. Writes the findings snapshot the "
        "verify commands gate against next to the findings file.",
    )
    p.add_argument("findings", nargs="?", type=Path, default=DEFAULT_FINDINGS, metavar="FINDINGS",
                   help=f"findings.json (default {DEFAULT_FINDINGS})")
    p.add_argument("--repo", type=Path, metavar="DIR",
                   help="the project's pytest rootdir: locate modes in its code and run commands from it "
                        "(default: the folder holding .halo/, else the current directory)")
    p.add_argument("--json", action="store_true", help="print fix-brief.json instead of Markdown")
    p.set_defaults(func=run)


def _repo_of(findings_path: Path) -> Path:
    parent = findings_path.resolve().parent
    return parent.parent if parent.name == ".halo" else Path.cwd()


def _trace_loader(findings: Findings, findings_path: Path) -> TraceLoader | None:
    """Read the evidence traces from the files the findings were made from (else the ``traces.jsonl``
    beside them), so each mode gets excerpts from several spans; None when none of them is there."""
    from engine.traces.rows import view_rows
    from engine.traces.store import TraceStore

    paths = [Path(f) for f in findings.dataset.files if Path(f).is_file()]
    beside = findings_path.resolve().parent / "traces.jsonl"
    if not paths and beside.is_file():
        paths = [beside]
    if not paths:
        return None

    def load(trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        return view_rows(TraceStore.open(paths), trace_ids)

    return load


def run(args: argparse.Namespace) -> int:
    from engine.code.locate import locate_modes
    from engine.publish.brief import build_brief, render_brief, write_snapshot

    path: Path = args.findings
    findings = read_findings_arg(path)
    repo = args.repo or _repo_of(path)
    if not repo.is_dir():
        raise UsageError(f"--repo {repo} is not a directory")
    locate_modes(findings, repo)
    snapshot = write_snapshot(findings, path.resolve().parent) if findings.failure_modes else None
    brief = build_brief(findings, run_from=repo, baseline=snapshot, load_traces=_trace_loader(findings, path))
    if args.json:
        print(json.dumps(brief.model_dump(mode="json"), indent=2))
    else:
        sys.stdout.write(render_brief(brief) + "\n")
    return 0
