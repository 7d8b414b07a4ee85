"""``nodemesh run`` and ``nodemesh ping``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

from nodemesh._loop import run as run_loop
from nodemesh.cli.health import add_health_options, health_config_from, serve_health
from nodemesh.cli.logs import say
from nodemesh.cli.topologies import add_topology_options, topologies_of
from nodemesh.cli.types import port, seconds
from nodemesh.cluster import Cluster
from nodemesh.errors import NodemeshError
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.events import NodeDown, NodeUp
from nodemesh.runtime.node import Node
from nodemesh.runtime.tls import tls_config_from


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
        "--visible",
        action="store_true",
        help="a visible node: in Erlang's nodes(), speaks global (docs/global.md) [hidden]",
    )
    add_topology_options(run)
    add_health_options(run)
    run.set_defaults(func=_run)

    ping = sub.add_parser("ping", help="ping a node: prints pong (exit 0) or pang (exit 1)")
    ping.add_argument("target", help="node to ping, e.g. app@10.0.0.5")
    _node_options(ping, default_name="nodemesh_ping")
    ping.add_argument(
        "--timeout", type=seconds, default=7.0, metavar="SECONDS", help="for the answer [7]"
    )
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
    parser.add_argument("--port", type=port, default=0, help="distribution port [any free]")
    parser.add_argument(
        "--net-ticktime",
        type=seconds,
        default=60.0,
        metavar="SECONDS",
        help="seconds; must match the cluster [60]",
    )
    parser.add_argument(
        "--failure-detector",
        choices=("erlang", "fast"),
        default="erlang",
        help="fast: notice a frozen nodemesh peer within 1 s (docs/failure-detection.md)",
    )
    add_tls_options(parser)


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    """``--tls-certfile/--tls-keyfile/--tls-cafile``, Erlang's ssl_dist_optfile names."""
    group = parser.add_argument_group("TLS distribution (docs/tls.md)")
    for name, what in (
        ("certfile", "this node's certificate (PEM); enables TLS, refusing plain TCP"),
        ("keyfile", "its private key (PEM) [in the certfile]"),
        ("cafile", "CA bundle peers' certificates must chain to [the system's]"),
    ):
        group.add_argument(
            f"--tls-{name}", metavar="FILE", help=f"{what} [$NODEMESH_TLS_{name.upper()}]"
        )


def _config(args: argparse.Namespace) -> NodeConfig:
    return NodeConfig(
        longnames=False if args.sname else None,
        port=args.port,
        net_ticktime=args.net_ticktime,
        tls=tls_config_from(args.tls_certfile, args.tls_keyfile, args.tls_cafile),
        failure_detector=args.failure_detector,
        hidden=not getattr(args, "visible", False),  # only `run` has --visible
    )


def _run(args: argparse.Namespace) -> int:
    try:
        return run_loop(_run_node(args))  # uvloop if installed
    except NodemeshError as exc:
        say(f"nodemesh: {exc}", level=logging.ERROR, event="error")
        return 1


async def _run_node(args: argparse.Namespace) -> int:
    topologies = topologies_of(args)  # a bad configuration fails before the node starts
    health_config_from(args)  # so does a bad health port
    stop: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    _on_signals(stop)
    async with Node(args.name, args.cookie, config=_config(args)) as node:
        name = node.name
        say(f"started {name}", event="started", node=name)
        events = node.events(max_queued=0)  # before the cluster starts: its first nodeups are kept
        # The task group is entered last and holds only what cannot fail, so a health port
        # that cannot be served is a plain NodemeshError (one line), not an exception group.
        async with (
            Cluster(node, topologies) as cluster,
            serve_health(args, node, cluster),
            asyncio.TaskGroup() as tasks,
        ):
            tasks.create_task(_print_events(events))
            for peer in args.connect:
                await _connect(node, peer)
            signal_name = await stop
            events.close()  # ends the printer: our own shutdown's nodedowns are not news
    say(f"stopped {name} ({signal_name})", event="stopped", node=name, signal=signal_name)
    return 0


def _on_signals(stop: asyncio.Future[str]) -> None:
    """Resolve ``stop`` with the name of the first SIGINT or SIGTERM."""

    def received(signum: signal.Signals) -> None:
        if not stop.done():
            stop.set_result(signum.name)

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, received, signum)


async def _connect(node: Node, peer: str) -> None:
    """``--connect``: a ping, so a failure comes with its reason (the cookies differ...)."""
    reason = await node.ping_result(peer)
    if reason is not None:
        say(f"nodemesh: {reason}", event="connect_failed", node=peer, reason=reason)


async def _print_events(events: Any) -> None:
    async for event in events:
        if isinstance(event, NodeUp):
            say(f"nodeup {event.node}", stdout=True, event="nodeup", node=event.node)
        elif isinstance(event, NodeDown):
            say(
                f"nodedown {event.node}",
                stdout=True,
                event="nodedown",
                node=event.node,
                reason=event.reason,
            )


def _ping(args: argparse.Namespace) -> int:
    try:
        return run_loop(_ping_node(args))
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
