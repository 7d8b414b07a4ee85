"""``nodemesh doctor``: check what stops nodes from connecting, print a fix per problem."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any, TextIO

from nodemesh.cli.node import add_tls_options
from nodemesh.cli.topologies import add_topology_options, topologies_of
from nodemesh.cli.types import seconds, wait
from nodemesh.cluster.topology import Topology
from nodemesh.doctor import CheckResult, DoctorOptions, Status, diagnose, verdict
from nodemesh.epmd.client import default_epmd_port
from nodemesh.errors import ConfigError, NodemeshError
from nodemesh.runtime._hostname import default_host
from nodemesh.runtime.tls import tls_config_from


def add_commands(sub: Any) -> None:
    """Add ``doctor`` to the ``nodemesh`` parser."""
    cmd = sub.add_parser(
        "doctor",
        help="check what stops nodes from connecting and say how to fix it",
        description="Check this node's name, cookie and EPMD, each topology's strategy "
        "(names, prerequisites, one discovery round) and the path to peers (EPMD, "
        "distribution port, TLS with --tls-certfile, a real handshake), and TLS "
        "certificates (expiry, names, key, chain). Prints PASS/WARN/FAIL per check with a fix, "
        "then a verdict. Exit 1 if any check FAILs.",
    )
    cmd.add_argument(
        "--name",
        default=os.environ.get("NODEMESH_NAME"),
        help="this node's name as given to `nodemesh run --name` [$NODEMESH_NAME, else "
        "nodemesh@<this host>]",
    )
    cmd.add_argument(
        "--sname", action="store_true", help="short names: fill in a host without dots"
    )
    cmd.add_argument("--cookie", default=None, help="[$NODEMESH_COOKIE, else ~/.erlang.cookie]")
    cmd.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="NODE",
        help="a node to reach: its EPMD, port and a handshake (repeatable) [up to 3 nodes "
        "found by discovery]",
    )
    add_topology_options(cmd)
    add_tls_options(cmd)
    cmd.add_argument(
        "--timeout", type=seconds, default=3.0, metavar="SECONDS", help="per network step [3]"
    )
    cmd.add_argument(
        "--wait", type=wait, default=None, metavar="SECONDS", help="listen to gossip [6]"
    )
    cmd.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    try:
        opts = options_of(args)
        return asyncio.run(_report(opts, sys.stdout))
    except NodemeshError as exc:  # e.g. $ERL_EPMD_PORT is not a port
        print(f"nodemesh doctor: {exc}", file=sys.stderr)
        return 1


def options_of(args: argparse.Namespace) -> DoctorOptions:
    """DoctorOptions from the command line; a bad cluster config becomes a FAIL line."""
    topologies: list[Topology] = []
    config_error = None
    try:
        topologies = topologies_of(args)
    except ConfigError as exc:
        config_error = str(exc)
    name = args.name or "nodemesh"
    if "@" not in name:
        name = f"{name}@{default_host(not args.sname)}"
    return DoctorOptions(
        name=name,
        cookie=args.cookie,
        peers=tuple(args.peer),
        topologies=tuple(topologies),
        config_error=config_error,
        epmd_port=default_epmd_port(),
        timeout=args.timeout,
        wait=args.wait,
        tls=tls_config_from(args.tls_certfile, args.tls_keyfile, args.tls_cafile),
    )


async def _report(opts: DoctorOptions, out: TextIO) -> int:
    results: list[CheckResult] = []
    async for result in diagnose(opts):
        results.append(result)
        out.write(format_result(result))
        out.flush()
    out.write(verdict(results) + "\n")
    return 1 if any(r.status is Status.FAIL for r in results) else 0


def format_result(result: CheckResult) -> str:
    """``STATUS  check: detail`` and, when there is one, an indented ``fix:`` line."""
    lines = [f"{result.status.value}  {result.check}: {result.detail}"]
    if result.fix:
        lines.append(f"      fix: {result.fix}")
    return "\n".join(lines) + "\n"
