"""The ``halo`` command line: one module per subcommand, each exposing ``register(subparsers)``.

A subcommand module defines ``register(sub) -> None`` which adds its parser and sets
``func=run`` where ``run(args) -> int`` is the exit status. Errors the user can fix
are reported as one line on stderr with exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("index", "convert", "analyze")


class UsageError(Exception):
    """A problem with the user's input or arguments: printed as one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="halo", description="Find systemic agent failure modes in traces.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"engine.cli.{name}_cmd").register(sub)  # each module adds its own parser
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"halo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"halo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
