"""A node running the gossip strategy, in this process or as a child process.

- :class:`NodeContext`: the smallest :class:`~nodemesh.cluster.strategy.StrategyContext`
  over a real :class:`~nodemesh.Node` (connect_nodes -> node.connect), so the strategy can
  be tested without the cluster runner; :func:`running` runs a strategy for a block.
- Run as a script (``python gossip_node.py --name n1@10.77.0.1 --cookie C --options
  JSON``), it starts a node with a gossip topology under the cluster runner (``--direct``:
  the strategy over a NodeContext instead) and prints ``started NAME``, then ``nodeup
  NAME`` / ``nodedown NAME`` lines, until stdin closes or SIGTERM. The netns tests run it
  inside network namespaces (each gets its own embedded EPMD); it needs nothing from the
  test suite.
- :class:`NodeProcess` starts that script (optionally behind a command prefix such as
  ``ip netns exec NS``) and follows its output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence, Set
from pathlib import Path
from typing import Any

from nodemesh.cluster.strategies.gossip import GossipOptions, GossipStrategy
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.events import NodeDown, NodeUp
from nodemesh.runtime.node import Node

SCRIPT = Path(__file__).resolve()
SRC = SCRIPT.parent.parent.parent / "src"


class NodeContext:
    """A StrategyContext over a Node: connects through ``node.connect``."""

    def __init__(self, node: Node, topology: str = "gossip") -> None:
        self.node = node
        self.topology = topology
        self.node_name = node.name
        self.epmd_port = node.config.epmd_port or int(os.environ.get("ERL_EPMD_PORT", 4369))
        self.log = logging.LoggerAdapter(
            logging.getLogger(f"nodemesh.cluster.{topology}"), {"topology": topology}
        )
        self.connect_attempts: list[str] = []
        self.expected: list[str] = []

    @property
    def dist_port(self) -> int | None:
        return self.node.port or None

    def hint_port(self, node: str, port: int) -> None:
        self.node.hint_port(node, port)

    def expect(self, node: str) -> None:
        self.expected.append(node)

    def list_nodes(self) -> list[str]:
        return self.node.nodes()

    async def connect_nodes(self, nodes: Set[str]) -> None:
        for peer in sorted(set(nodes) - set(self.node.nodes()) - {self.node_name}):
            self.connect_attempts.append(peer)
            await self.node.connect(peer)

    async def disconnect_nodes(self, nodes: Set[str]) -> None:
        for peer in sorted(set(nodes) & set(self.node.nodes())):
            await self.node.disconnect(peer)


def free_udp_port() -> int:
    """A UDP port nothing is bound to on this host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running(strategy: GossipStrategy, ctx: Any) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``strategy.run(ctx)`` as a task for the block, from its first heartbeat (its
    socket is open then); cancel it after, re-raising what it raised if it failed."""
    from support.net import wait_for  # not at the top: the script runs without tests/

    task = asyncio.create_task(strategy.run(ctx))
    try:
        await wait_for(lambda: strategy.statistics().heartbeats_sent > 0 or task.done(), 5)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- the script -------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    config = NodeConfig(net_ticktime=args.net_ticktime, epmd_port=args.epmd_port)
    options = GossipOptions(**json.loads(args.options))  # checked even when the runner builds it
    async with Node(args.name, args.cookie, config=config) as node:
        events = node.events()
        if args.direct:
            runner = asyncio.create_task(GossipStrategy(options).run(NodeContext(node)))
        else:  # through the cluster runner, as `nodemesh run` does
            from nodemesh.cluster import Cluster

            topology = {"gossip": {"strategy": "gossip", "config": json.loads(args.options)}}
            runner = asyncio.create_task(_cluster(Cluster(node, topology)))
        print(f"started {node.name}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        stdin = sys.stdin.fileno()
        loop.add_reader(stdin, lambda: os.read(stdin, 4096) or stop.set())
        printer = asyncio.create_task(_print_events(events))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        loop.remove_reader(stdin)
        if runner.done() and not runner.cancelled() and runner.exception():
            print(f"strategy failed: {runner.exception()!r}", file=sys.stderr, flush=True)
        for task in (runner, printer, waiter):
            task.cancel()
        await asyncio.gather(runner, printer, waiter, return_exceptions=True)
        events.close()


async def _cluster(cluster: Any) -> None:
    async with cluster:
        await asyncio.Event().wait()


async def _print_events(events: Any) -> None:
    async for event in events:
        if isinstance(event, NodeUp):
            print(f"nodeup {event.node}", flush=True)
        elif isinstance(event, NodeDown):
            print(f"nodedown {event.node}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--net-ticktime", type=float, default=60.0)
    parser.add_argument("--epmd-port", type=int, default=None)
    parser.add_argument("--options", default="{}", help="GossipOptions as JSON")
    parser.add_argument("--direct", action="store_true", help="run without the cluster runner")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


# --- following a child process ------------------------------------------------------------


class NodeProcess:
    """A child process running this script; ``up`` is the set of nodes it reports up."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.up: set[str] = set()
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._changed = asyncio.Event()
        self._readers = [
            asyncio.create_task(self._follow()),
            asyncio.create_task(self._collect_stderr()),
        ]

    @classmethod
    async def start(
        cls,
        name: str,
        cookie: str,
        options: dict[str, Any],
        *,
        prefix: Sequence[str] = (),
        net_ticktime: float = 60.0,
        epmd_port: int | None = None,
        timeout: float = 20.0,
        direct: bool = False,
    ) -> NodeProcess:
        args = [*prefix, sys.executable, str(SCRIPT), "--name", name, "--cookie", cookie]
        args += ["--direct"] if direct else []
        args += ["--net-ticktime", str(net_ticktime), "--options", json.dumps(options)]
        if epmd_port is not None:
            args += ["--epmd-port", str(epmd_port)]
        path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        node = cls(proc, name)
        await node.wait(lambda: any(line.startswith("started ") for line in node.lines), timeout)
        return node

    async def _follow(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            self.lines.append(line)
            kind, _, peer = line.partition(" ")
            if kind == "nodeup":
                self.up.add(peer)
            elif kind == "nodedown":
                self.up.discard(peer)
            self._changed.set()
        self._changed.set()

    async def _collect_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.errors.append(raw.decode(errors="replace").rstrip())
            del self.errors[:-200]
            self._changed.set()

    async def wait(self, condition: Any, timeout: float, what: str = "") -> None:
        """Until ``condition()`` holds; fails with the process's output after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            if self.proc.returncode is not None and self._readers[0].done():
                raise AssertionError(f"{self.name} exited: {self.report()}")
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"{self.name}: timed out waiting for {what}: {self.report()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))

    async def wait_up(self, nodes: Set[str], timeout: float = 20.0) -> None:
        await self.wait(lambda: set(nodes) <= self.up, timeout, f"nodeup {sorted(nodes)}")

    async def wait_down(self, nodes: Set[str], timeout: float = 20.0) -> None:
        await self.wait(lambda: not set(nodes) & self.up, timeout, f"nodedown {sorted(nodes)}")

    def report(self) -> str:
        out = "\n  ".join(self.lines[-30:])
        err = "\n  ".join(self.errors[-30:])
        return f"\nstdout:\n  {out}\nstderr:\n  {err}"

    async def stop(self) -> None:
        """Close its stdin (it exits), then kill it if need be, and reap it."""
        if self.proc.returncode is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
        await self.proc.wait()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


if __name__ == "__main__":
    main()
