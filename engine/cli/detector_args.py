"""``halo analyze`` options of the code-aware steps: the repository, the diff base and user detectors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli import UsageError


def add_detector_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, metavar="DIR",
                   help="the project's source (its pytest rootdir): locate failure modes in its code and write "
                        "a fix brief whose commands run from there")
    p.add_argument("--diff-base", metavar="REF",
                   help="git ref the change under review is compared with (default: GITHUB_BASE_REF)")
    p.add_argument("--detector", action="append", default=[], metavar="MODULE:ATTR",
                   help="a user detector (object, class or factory); repeatable. Installed "
                        "`pytest_halo.detectors` entry points load too")


def analysis_extras(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``engine.run.run_analysis`` from the options above."""
    from engine.analysis.detectors.loading import DetectorLoadError, load_entry_points, load_spec

    if args.repo is not None and not args.repo.is_dir():
        raise UsageError(f"--repo {args.repo} is not a directory")
    try:
        detectors = load_entry_points()
        for spec in args.detector:
            detectors.extend(load_spec(spec))
    except DetectorLoadError as exc:
        raise UsageError(str(exc)) from None
    names = [d.name for d in detectors]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"two detectors are named {dupes[0]!r}")
    return {"repo_root": args.repo, "diff_base": args.diff_base, "detectors": detectors}
