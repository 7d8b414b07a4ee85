"""The ``nodemesh`` command line.

Each command lives in its own module exposing ``add_commands(subparsers)``, which adds its
sub-parsers and sets ``func`` to a callable taking the parsed arguments and returning the
process exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from nodemesh import __version__


def build_parser() -> argparse.ArgumentParser:
    """Build the ``nodemesh`` argument parser with every sub-command."""
    from nodemesh.cli import discover, doctor, epmd, node

    parser = argparse.ArgumentParser(
        prog="nodemesh",
        description="Python processes as real Erlang distribution nodes, clustered.",
    )
    parser.add_argument("--version", action="version", version=f"nodemesh {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (node, epmd, discover, doctor):
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
