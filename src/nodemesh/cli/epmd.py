"""``nodemesh epmd`` (run an EPMD in the foreground) and ``nodemesh names`` (list one's nodes)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import signal
import sys

from nodemesh.cli.logs import say
from nodemesh.cli.types import port, seconds
from nodemesh.epmd.client import default_epmd_port, names_response
from nodemesh.epmd.server import EpmdServer
from nodemesh.errors import NodemeshError


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``epmd`` and ``names`` sub-commands."""
    serve = subparsers.add_parser(
        "epmd",
        help="run an EPMD (Erlang port mapper) in the foreground",
        description="Serve EPMD until SIGINT or SIGTERM, logging registrations.",
    )
    serve.add_argument(
        "--port", type=port, help="port to listen on (default: $ERL_EPMD_PORT or 4369)"
    )
    serve.add_argument(
        "--address",
        action="append",
        metavar="A",
        help="listen only on IP address A (repeat or comma-separate; loopback is added)",
    )
    serve.set_defaults(func=run_epmd)

    names = subparsers.add_parser(
        "names",
        help="list the nodes registered with a host's EPMD",
        description="Print what the EPMD on HOST holds, as `epmd -names` does.",
    )
    names.add_argument("host", nargs="?", default="127.0.0.1", metavar="HOST")
    names.add_argument("--port", type=port, help="EPMD port (default: $ERL_EPMD_PORT or 4369)")
    names.add_argument("--timeout", type=seconds, default=5.0, help="seconds (default: 5)")
    names.set_defaults(func=run_names)


def run_epmd(args: argparse.Namespace) -> int:
    """``nodemesh epmd``: serve until a signal (exit 0) or until the port cannot be bound."""
    addresses = None
    if args.address:
        addresses = [a.strip() for arg in args.address for a in arg.split(",") if a.strip()]
    epmd_log = logging.getLogger("nodemesh.epmd")
    if epmd_log.getEffectiveLevel() > logging.INFO:
        epmd_log.setLevel(logging.INFO)  # registrations are what this command is watched for
    port = args.port
    try:
        port = default_epmd_port() if port is None else port  # $ERL_EPMD_PORT may be bad
        return asyncio.run(_serve(port, addresses))
    except NodemeshError as exc:
        print(f"nodemesh epmd: {exc}{_taken_hint(exc, port)}", file=sys.stderr)
        return 1


def _taken_hint(exc: NodemeshError, port: int) -> str:
    """When the port is taken by an EPMD already (a node's embedded one, or erl's), say so:
    there is nothing to start."""
    cause = exc.__cause__
    if not isinstance(cause, OSError) or cause.errno != errno.EADDRINUSE:
        return ""
    try:
        asyncio.run(names_response("127.0.0.1", epmd_port=port, timeout=2.0))
    except NodemeshError:
        return ""
    return (
        f"; an EPMD already answers on port {port} (`nodemesh names` lists its nodes): "
        "nothing to start, or give --port for another one"
    )


async def _serve(port: int, addresses: list[str] | None) -> int:
    server = EpmdServer()
    await server.start(port, addresses)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not main thread
            loop.add_signal_handler(signum, stop.set)
    # Printed once signals are handled: a supervisor may stop us as soon as it reads this.
    where = ", ".join(server.addresses)
    say(f"epmd: listening on port {server.port} ({where})", stdout=True, event="listening")
    async with asyncio.TaskGroup() as tasks:
        closed = tasks.create_task(_set_when_closed(server, stop))  # a local `epmd -kill`
        await stop.wait()
        closed.cancel()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signum)
    await server.aclose()
    return 0


async def _set_when_closed(server: EpmdServer, stop: asyncio.Event) -> None:
    await server.wait_closed()
    stop.set()


def run_names(args: argparse.Namespace) -> int:
    """``nodemesh names``: print the host's EPMD registrations; exit 1 if unreachable."""
    try:
        reply = asyncio.run(names_response(args.host, epmd_port=args.port, timeout=args.timeout))
    except NodemeshError as exc:
        print(f"nodemesh names: {exc}", file=sys.stderr)
        return 1
    print(f"epmd: up and running on port {reply.epmd_port} with data:")
    for name, node_port in reply.nodes:
        print(f"name {name} at port {node_port}")
    return 0
