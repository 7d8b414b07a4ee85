"""``nodemesh demo``: a chat served by every node of a local cluster."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from nodemesh.cli.types import port
from nodemesh.errors import NodemeshError


def add_commands(sub: Any) -> None:
    """Add ``demo`` to the ``nodemesh`` parser."""
    demo = sub.add_parser(
        "demo",
        help="run N local nodes, each serving a chat page; messages cross nodes by PubSub",
        description="Start N nodes on this machine that find each other by gossip; each "
        "serves the chat page on its own port (4000, 4001, ...). Ctrl-C stops them all.",
    )
    demo.add_argument("--nodes", type=int, default=3, help="how many nodes [3]")
    demo.add_argument("--port", type=port, default=4000, help="first node's HTTP port [4000]")
    demo.add_argument(
        "--host", default="127.0.0.1", help="address to serve and gossip on [127.0.0.1]"
    )
    demo.add_argument("--cookie", default="nodemesh-demo", help="the nodes' cookie")
    demo.add_argument(
        "--gossip-port", type=port, default=45892, help="UDP port of the gossip [45892]"
    )
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from nodemesh.demo import DemoConfig  # aiohttp is imported only by this command

    try:
        config = DemoConfig(
            nodes=args.nodes,
            port=args.port,
            host=args.host,
            cookie=args.cookie,
            gossip_port=args.gossip_port,
        )
        return asyncio.run(_run(config))
    except NodemeshError as exc:
        print(f"nodemesh demo: {exc}", file=sys.stderr, flush=True)
        return 1


async def _run(config: Any) -> int:
    from nodemesh.demo import run_demo

    demo = asyncio.ensure_future(run_demo(config, on_ready=_print_urls))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, demo.cancel)
    try:
        await demo
    except asyncio.CancelledError:
        print("nodemesh demo: stopped", flush=True)
    except BaseExceptionGroup as group:  # a node that could not start, among the others
        raise _first_error(group) from None
    return 0


def _first_error(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first NodemeshError in ``group`` (one sentence for the user), else the group."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            exc = _first_error(exc)
        if isinstance(exc, NodemeshError):
            return exc
    return group


def _print_urls(nodes: list[tuple[str, str]]) -> None:
    if len(nodes) == 1:
        print("nodemesh demo: 1 node on room:lobby. Open its page:")
    else:
        print(f"nodemesh demo: {len(nodes)} nodes chat on room:lobby. Open two of these pages:")
    width = max(len(name) for name, _ in nodes)
    for name, url in nodes:
        print(f"  {url}   {name:<{width}}")
    print("Stop and start a node from its page; Ctrl-C here stops them all.", flush=True)
