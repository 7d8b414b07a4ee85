"""The ``nodemesh`` command line.

Each command lives in its own module exposing ``add_commands(subparsers)``, which adds its
sub-parsers and sets ``func`` to a callable taking the parsed arguments and returning the
process exit code. Shared pieces: :mod:`~nodemesh.cli.logs` (``-v``, ``--log-level``,
``--log-format``, accepted before and after the command), :mod:`~nodemesh.cli.topologies`
(``--config``, ``--strategy``, ``--option``), :mod:`~nodemesh.cli.health` (``run``'s
health server) and :mod:`~nodemesh.cli.types` (ports and durations checked by argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nodemesh import __version__
from nodemesh._build import implementation
from nodemesh.cli.logs import add_log_options, configure, log_settings
from nodemesh.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    """Build the ``nodemesh`` argument parser with every sub-command."""
    from nodemesh.cli import demo, discover, doctor, epmd, node, pubsub

    parser = argparse.ArgumentParser(
        prog="nodemesh",
        description="Python processes as real Erlang distribution nodes, clustered.",
    )
    parser.add_argument(
        "--version", action="version", version=f"nodemesh {__version__} ({implementation()})"
    )
    add_log_options(parser, sub=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (node, epmd, discover, doctor, pubsub, demo):
        module.add_commands(sub)
    for command in sub.choices.values():
        add_log_options(command, sub=True)  # so `nodemesh run -v` works as `nodemesh -v run`
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        configure(*log_settings(args))
    except ConfigError as exc:
        print(f"nodemesh: {exc}", file=sys.stderr)
        return 2
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
