"""`halo convert` (placeholder until its owner lands it)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="not implemented yet")
    p.set_defaults(func=lambda args: 2)
