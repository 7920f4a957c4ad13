"""The ``halo`` command line: one module per subcommand, each exposing ``register(subparsers)``.

A subcommand module defines ``register(sub) -> None`` which adds its parser and sets
``func=run`` where ``run(args) -> int`` is the exit status. Errors the user can fix
are reported as one line on stderr with exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.findings import Findings

SUBCOMMANDS = ("index", "convert", "analyze", "github", "sandbox", "run-code", "brief", "report")


class UsageError(Exception):
    """A problem with the user's input or arguments: printed as one line, exit 2."""


def check_input_paths(paths: Sequence[str | os.PathLike[str]], *, allow_missing: bool = False) -> None:
    """Refuse at once what cannot be read as trace input: FIFOs, devices, sockets (and missing paths).

    A FIFO would block the first ``open()`` forever; directories are fine (they expand to files).
    """
    from engine.safe_io import UnsafePathError, check_regular_input

    missing = []
    for path in paths:
        try:
            check_regular_input(path, allow_dir=True)
        except FileNotFoundError:
            missing.append(os.fspath(path))
        except UnsafePathError as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
    if missing and not allow_missing:
        raise UsageError(f"no such file or directory: {', '.join(missing)}")


def read_findings_arg(path: str | os.PathLike[str]) -> Findings:
    """A findings file named on the command line, or ``UsageError`` naming the real cause.

    The baseline reader already tells missing, FIFO, empty, truncated, not-JSON and wrong-schema
    files apart; ``halo report``, ``halo brief`` and ``halo github`` all read findings through it.
    """
    from engine.analysis.baseline import BaselineError, load_baseline

    try:
        findings = load_baseline(Path(path), update_flag="`pytest --halo` or `halo analyze`")
    except BaselineError as exc:
        raise UsageError(str(exc).replace("baseline ", "findings ", 1)) from None
    assert findings is not None  # load_baseline returns None only when asked to create the file
    return findings


def build_parser() -> argparse.ArgumentParser:
    from engine import __version__

    parser = argparse.ArgumentParser(prog="halo", description="Find systemic agent failure modes in traces.")
    parser.add_argument("--version", action="version", version=f"halo (pytest-halo) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"engine.cli.{name.replace('-', '_')}_cmd").register(sub)  # each module adds its own parser
    return parser


def main(argv: list[str] | None = None) -> int:
    from engine.cli.llm_args import engine_form_argv

    parser = build_parser()
    args = parser.parse_args(engine_form_argv(list(sys.argv[1:] if argv is None else argv), SUBCOMMANDS))
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"halo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"halo {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `halo ... | head`: the reader left; no traceback, like any Unix tool
        silence_stdout()
        return EXIT_BROKEN_PIPE


EXIT_BROKEN_PIPE = 141  # what a shell reports for a command ended by SIGPIPE


def silence_stdout() -> None:
    """Point stdout at /dev/null after a broken pipe so the interpreter's final flush cannot raise."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
