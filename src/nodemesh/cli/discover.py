"""``nodemesh discover``: what each topology's strategy finds, without connecting."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from nodemesh.cli.topologies import add_topology_options, topologies_of
from nodemesh.cli.types import seconds, wait
from nodemesh.cluster.topology import Topology
from nodemesh.doctor.discovery import DiscoveryResult, discover_once
from nodemesh.epmd.client import default_epmd_port
from nodemesh.errors import NodemeshError
from nodemesh.runtime._hostname import default_host


def add_commands(sub: Any) -> None:
    """Add ``discover`` to the ``nodemesh`` parser."""
    cmd = sub.add_parser(
        "discover",
        help="run each topology's discovery once and print the node names found",
        description="Run each topology's discovery once and print the node names it finds, "
        "one per line, without connecting to them. Topologies come from --config, "
        "--strategy, or the environment, as for `nodemesh run`. Exit 1 if a lookup fails.",
    )
    add_topology_options(cmd)
    cmd.add_argument(
        "--wait",
        type=wait,
        default=None,
        metavar="SECONDS",
        help="how long to listen to push strategies such as gossip "
        "[gossip: its longest heartbeat interval + 1 s, i.e. 6 s by default]",
    )
    cmd.add_argument(
        "--timeout", type=seconds, default=10.0, metavar="SECONDS", help="per lookup [10]"
    )
    cmd.add_argument(
        "--format",
        choices=("auto", "plain", "prefixed", "json"),
        default="auto",
        help="plain: names only; prefixed: 'topology name'; json: one object per topology; "
        "auto: plain for one topology, prefixed for several [auto]",
    )
    cmd.add_argument(
        "--name",
        default=os.environ.get("NODEMESH_NAME"),
        help="this node's name, which strategies may use (local_epmd takes its host) "
        "[$NODEMESH_NAME, else nodemesh_discover@<this host>]",
    )
    cmd.set_defaults(func=_discover)


def _discover(args: argparse.Namespace) -> int:
    try:
        topologies = topologies_of(args)
        if not topologies:
            print(
                "nodemesh discover: no topology configured; give --config or --strategy, or "
                "set $NODEMESH_STRATEGY or $NODEMESH_CLUSTER_CONFIG",
                file=sys.stderr,
            )
            return 1
        name = args.name or f"nodemesh_discover@{default_host(True)}"
        results = asyncio.run(_run_all(topologies, name, args))
    except NodemeshError as exc:
        print(f"nodemesh discover: {exc}", file=sys.stderr)
        return 1
    print_results(results, args.format)
    for result in results:
        if result.error is None and not result.nodes:
            window = f" in {result.listened:g} s" if result.listened is not None else ""
            print(
                f"nodemesh discover: topology {result.topology!r} ({result.strategy}) "
                f"found no nodes{window}",
                file=sys.stderr,
            )
    failed = [r for r in results if r.error is not None]
    for result in failed:
        print(
            f"nodemesh discover: topology {result.topology!r} ({result.strategy}): "
            f"discovery failed: {result.error}",
            file=sys.stderr,
        )
    return 1 if failed else 0


async def _run_all(
    topologies: list[Topology], name: str, args: argparse.Namespace
) -> list[DiscoveryResult]:
    epmd_port = default_epmd_port()
    async with asyncio.TaskGroup() as tasks:  # side by side: gossip listens for --wait
        runs = [
            tasks.create_task(
                discover_once(
                    t, node_name=name, epmd_port=epmd_port, wait=args.wait, timeout=args.timeout
                )
            )
            for t in topologies
        ]
    return [run.result() for run in runs]


def print_results(results: list[DiscoveryResult], fmt: str) -> None:
    """Print the names found in ``fmt`` (see the ``--format`` option)."""
    if fmt == "json":
        document = {
            r.topology: {"strategy": r.strategy, "nodes": sorted(r.nodes), "error": r.error}
            for r in results
        }
        print(json.dumps(document, indent=2), flush=True)
        return
    prefixed = fmt == "prefixed" or (fmt == "auto" and len(results) > 1)
    for result in results:
        for node in sorted(result.nodes):
            print(f"{result.topology} {node}" if prefixed else node, flush=True)
