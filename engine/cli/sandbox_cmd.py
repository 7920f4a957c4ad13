"""``halo sandbox setup|doctor``: fetch the pinned Pyodide once (then everything runs offline), or say what is missing."""

from __future__ import annotations

import argparse

from engine.cli import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sandbox", help="set up or check the run_code sandbox (Deno + Pyodide)")
    p.add_argument("action", choices=("setup", "doctor"),
                   help="setup: fetch and verify Pyodide, make the snapshot; doctor: print what is there")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.sandbox import SandboxUnavailable, doctor, setup

    if args.action == "setup":
        try:
            lines = setup()
        except SandboxUnavailable as exc:
            raise UsageError(str(exc)) from None
        print("\n".join(lines))
        return 0
    report = doctor()
    print("\n".join(report.lines))
    print("run_code: " + ("available" if report.ok else "unavailable"))
    return 0 if report.ok else 1
