"""``nodemesh run`` and ``nodemesh ping``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from nodemesh.cli.health import add_health_options, health_config_from, serve_health
from nodemesh.cluster.runner import Cluster
from nodemesh.cluster.topology import Topology, load_toml, topologies_from_env
from nodemesh.errors import NodemeshError
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.events import NodeDown, NodeUp
from nodemesh.runtime.node import Node


def add_commands(sub: Any) -> None:
    """Add ``run`` and ``ping`` to the ``nodemesh`` parser."""
    run = sub.add_parser("run", help="run a node until SIGINT/SIGTERM, printing nodeup/nodedown")
    _node_options(run, default_name=None)
    run.add_argument(
        "--connect",
        action="append",
        default=[],
        metavar="NODE",
        help="connect to NODE at start (repeatable)",
    )
    run.add_argument(
        "--config",
        metavar="TOML",
        help="form the cluster with the [topologies.*] of this file (see docs/cluster.md)",
    )
    run.add_argument(
        "--strategy",
        metavar="NAME",
        help="form the cluster with one topology of this strategy and default options "
        "(gossip, epmd, local_epmd, erlang_hosts, ...). Without --config or --strategy, "
        "topologies come from $NODEMESH_CLUSTER_CONFIG, $NODEMESH_STRATEGY and "
        "$NODEMESH_TOPOLOGIES__*",
    )
    add_health_options(run)
    run.set_defaults(func=_run)

    ping = sub.add_parser("ping", help="ping a node: prints pong (exit 0) or pang (exit 1)")
    ping.add_argument("target", help="node to ping, e.g. app@10.0.0.5")
    _node_options(ping, default_name="nodemesh_ping")
    ping.add_argument("--timeout", type=float, default=7.0, help="seconds [7]")
    ping.set_defaults(func=_ping)


def _node_options(parser: argparse.ArgumentParser, default_name: str | None) -> None:
    parser.add_argument(
        "--name",
        required=default_name is None,
        default=default_name,
        help="node name, alive@host (host filled in when omitted)",
    )
    parser.add_argument(
        "--cookie", default=None, help="cookie [$NODEMESH_COOKIE, else ~/.erlang.cookie]"
    )
    parser.add_argument(
        "--sname", action="store_true", help="short names (host without dots), like erl -sname"
    )
    parser.add_argument("--port", type=int, default=0, help="distribution port [any free]")
    parser.add_argument(
        "--net-ticktime", type=float, default=60.0, help="seconds; must match the cluster [60]"
    )


def _config(args: argparse.Namespace) -> NodeConfig:
    return NodeConfig(
        longnames=False if args.sname else None,
        port=args.port,
        net_ticktime=args.net_ticktime,
    )


def _run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run_node(args))
    except NodemeshError as exc:
        print(f"nodemesh: {exc}", file=sys.stderr)
        return 1


async def _run_node(args: argparse.Namespace) -> int:
    topologies = topologies_of(args)  # a bad configuration fails before the node starts
    health_config_from(args)  # so does a bad health port
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Node(args.name, args.cookie, config=_config(args)) as node:
        events = node.events()
        printer = asyncio.create_task(_print_events(events))
        print(f"started {node.name}", file=sys.stderr, flush=True)
        async with Cluster(node, topologies) as cluster, serve_health(args, node, cluster):
            for peer in args.connect:
                if not await node.connect(peer):
                    print(f"nodemesh: cannot connect to {peer}", file=sys.stderr, flush=True)
            await stop.wait()
        events.close()
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
    return 0


def topologies_of(args: argparse.Namespace) -> list[Topology]:
    """The topologies of --config and --strategy, else those of the environment (also used
    by ``nodemesh discover`` and ``doctor``). Raises ConfigError."""
    topologies: list[Topology] = []
    if args.config:
        topologies += load_toml(args.config)
    if args.strategy:
        name = args.strategy.lower().replace("-", "_")
        topologies.append(Topology.create(name if name.isidentifier() else "cli", args.strategy))
    if args.config is None and args.strategy is None:
        topologies = topologies_from_env()
    return topologies


async def _print_events(events: Any) -> None:
    async for event in events:
        if isinstance(event, NodeUp):
            print(f"nodeup {event.node}", flush=True)
        elif isinstance(event, NodeDown):
            print(f"nodedown {event.node}", flush=True)


def _ping(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_ping_node(args))
    except NodemeshError as exc:
        print(f"pang\nnodemesh: {exc}", flush=True)
        return 1


async def _ping_node(args: argparse.Namespace) -> int:
    config = _config(args)
    async with Node(_unique(args.name), args.cookie, config=config) as node:
        error = await node.ping_result(args.target, timeout=args.timeout)
    if error is None:
        print("pong", flush=True)
        return 0
    print(f"pang\n{error}", flush=True)
    return 1


def _unique(name: str) -> str:
    """Several pings may run at once: make the default name unique per process."""
    if name != "nodemesh_ping":
        return name
    import os

    return f"nodemesh_ping_{os.getpid()}"
