"""``nodemesh subscribe`` and ``nodemesh publish``: Phoenix.PubSub from the shell.

Both run a node like ``nodemesh run`` (``--name``, ``--cookie``, ``--config``,
``--strategy``, ``--option``, repeatable ``--connect``). ``--pubsub`` names the
Phoenix.PubSub server (``MyApp.PubSub`` talks to an Elixir app's ``MyApp.PubSub``).

``subscribe`` prints each message on its own line (stdout): a binary as its UTF-8 text,
any other term in Erlang's text form. ``publish`` waits (up to ``--timeout``) until it
sees the PubSub's members on the nodes it was told to ``--connect`` to (or on at least
one node when it forms the cluster by a strategy), broadcasts MESSAGE as a binary, and
exits 0, or 1 with the reason when no other node runs the PubSub: a subscriber can only
be reached through one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from typing import Any

from nodemesh._loop import run as run_loop
from nodemesh.cli.logs import say
from nodemesh.cli.node import _config, _connect, _node_options, _on_signals
from nodemesh.cli.topologies import add_topology_options, topologies_of
from nodemesh.cli.types import seconds
from nodemesh.cluster import Cluster
from nodemesh.errors import NodemeshError
from nodemesh.runtime.node import Node
from nodemesh.services.pubsub import PubSub
from nodemesh.term.text import erlang_text

__all__ = ["add_commands", "message_line"]


def add_commands(sub: Any) -> None:
    """Add ``subscribe`` and ``publish`` to the ``nodemesh`` parser."""
    subscribe = sub.add_parser(
        "subscribe", help="print each message broadcast on TOPIC (Phoenix.PubSub), one a line"
    )
    subscribe.add_argument("topic", metavar="TOPIC", help='e.g. "room:lobby"')
    _common(subscribe, "nodemesh_subscribe")
    subscribe.set_defaults(func=_subscribe)

    publish = sub.add_parser(
        "publish", help="broadcast MESSAGE (a binary) on TOPIC to every node's subscribers"
    )
    publish.add_argument("topic", metavar="TOPIC", help='e.g. "room:lobby"')
    publish.add_argument("message", metavar="MESSAGE", help="sent as a UTF-8 binary")
    _common(publish, "nodemesh_publish")
    publish.add_argument(
        "--timeout",
        type=seconds,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for the other nodes' PubSub members [5]",
    )
    publish.set_defaults(func=_publish)


def _common(parser: argparse.ArgumentParser, default_name: str) -> None:
    _node_options(parser, default_name=default_name)
    parser.add_argument(
        "--pubsub",
        default="nodemesh",
        metavar="NAME",
        help="the Phoenix.PubSub server's name, e.g. MyApp.PubSub [nodemesh]",
    )
    parser.add_argument(
        "--pool-size", type=int, default=1, metavar="N", help="the PubSub's pool_size [1]"
    )
    parser.add_argument(
        "--connect",
        action="append",
        default=[],
        metavar="NODE",
        help="connect to NODE at start (repeatable)",
    )
    add_topology_options(parser)


def message_line(message: Any) -> str:
    """How ``subscribe`` prints a message: a UTF-8 binary as its text, else Erlang's text
    form (a binary that is not UTF-8 too)."""
    if type(message) is bytes:
        with contextlib.suppress(UnicodeDecodeError):
            return message.decode()
    return erlang_text(message)


def _node_name(args: argparse.Namespace, default: str) -> str:
    """The default names get the process id: several may run on one host at once."""
    return f"{default}_{os.getpid()}" if args.name == default else str(args.name)


def _subscribe(args: argparse.Namespace) -> int:
    return _main(_subscribe_node(args))


def _publish(args: argparse.Namespace) -> int:
    return _main(_publish_node(args))


def _main(coro: Any) -> int:
    try:
        code: int = run_loop(coro)  # uvloop if installed
    except NodemeshError as exc:
        say(f"nodemesh: {exc}", level=logging.ERROR, event="error")
        return 1
    return code


async def _subscribe_node(args: argparse.Namespace) -> int:
    topologies = topologies_of(args)  # a bad configuration fails before the node starts
    stop: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    _on_signals(stop)
    name = _node_name(args, "nodemesh_subscribe")
    async with (
        Node(name, args.cookie, config=_config(args)) as node,
        PubSub(node, args.pubsub, pool_size=args.pool_size) as pubsub,
        pubsub.subscribe(args.topic, max_queued=0) as subscription,
        Cluster(node, topologies),
        asyncio.TaskGroup() as tasks,
    ):
        say(f"subscribed {node.name} to {args.topic!r}", event="subscribed", node=node.name)
        printer = tasks.create_task(_print_messages(subscription))
        for peer in args.connect:
            await _connect(node, peer)
        signal_name = await stop
        printer.cancel()
    say(f"stopped {name} ({signal_name})", event="stopped", node=name, signal=signal_name)
    return 0


async def _print_messages(subscription: Any) -> None:
    async for message in subscription:
        print(message_line(message), flush=True)


async def _publish_node(args: argparse.Namespace) -> int:
    topologies = topologies_of(args)
    name = _node_name(args, "nodemesh_publish")
    async with (
        Node(name, args.cookie, config=_config(args)) as node,
        PubSub(node, args.pubsub, pool_size=args.pool_size) as pubsub,
        Cluster(node, topologies),
    ):
        for peer in args.connect:
            await _connect(node, peer)
        await _wait_for_members(pubsub, args.connect, args.timeout)
        reached = await pubsub.broadcast(args.topic, args.message.encode())
    if reached == 0:
        say(
            f"nodemesh: no subscriber was reached: no other node runs PubSub {args.pubsub!r} "
            f"(waited {args.timeout:g} s)",
            level=logging.ERROR,
            event="not_reached",
        )
        return 1
    return 0


async def _wait_for_members(pubsub: PubSub, connect: list[str], timeout: float) -> None:
    """Until the PubSub runs on every ``--connect`` node (on one node when there are
    none), or ``timeout``: then publish to those seen so far."""
    wanted = set(connect)
    mine = pubsub.node.name

    def seen(members: list[Any]) -> bool:
        nodes = {pid.node for pid in members} - {mine}
        return wanted <= nodes if wanted else bool(nodes)

    with contextlib.suppress(TimeoutError):
        await pubsub.scope.wait_for_members(pubsub.groups[0], seen, timeout)
