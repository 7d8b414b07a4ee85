"""One Python node of the chaos suite, run as a child process (one per network namespace).

``python chaos_node.py --name p1@10.77.0.1 --cookie C --peers JSON [--config JSON]``
starts a :class:`~nodemesh.Node` (``--config``: :class:`NodeConfig` fields) under the
cluster runner with the ``epmd`` strategy polling the static peer list, so the node
reconnects by itself after every fault. It prints ``started NAME INCARNATION``, then
``up NODE`` / ``down NODE REASON`` lines, and answers one request per stdin line
(``ID COMMAND``) with ``reply ID JSON``:

- ``nodes``: the nodes connected now;
- ``traffic-on`` / ``traffic-off``: start / stop the sender; ``traffic-off`` answers, per
  peer, the first and last number sent on each connection (epoch), and the epoch up now;
- ``report``: what the ``chaos`` mailbox received, per sender node, incarnation and
  epoch, as ``[count, first, last, not_increasing, gaps]``, and the nodedowns per peer;
- ``stats``: asyncio tasks, open fds and RSS (KiB) of this process, for the leak check.

The sender sends ``{seq, ThisNode, Incarnation, Epoch, N}`` to ``{chaos, Peer}`` every
``--interval`` seconds to every peer connected at that moment (never dialling: a send to a
peer that is down is skipped, not queued), N counting up per peer from 1 across
connections. The incarnation is random per process, so a restarted node starts a new
sequence; the epoch numbers the connection the message goes on, so the receiver can
check each connection on its own: in order, no gap, only a tail lost if it dropped.
The Erlang side is ``nm_chaos.erl``, with the same messages and answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any

from nodemesh.cluster import Cluster
from nodemesh.cluster.config import ClusterConfig
from nodemesh.errors import NodeDownError
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.events import NodeDown, NodeUp
from nodemesh.runtime.node import Node
from nodemesh.term import Atom

# Reconnect promptly after a fault heals: the runner retries a dropped peer at once, then
# every 0.2..1 s, and polls the list every 0.5 s.
RETRY = ClusterConfig(retry_min_delay=0.2, retry_max_delay=1.0, connect_timeout=3.0)


class Chaos:
    """The receiver's tallies, the sender's counters and the nodedowns, of one node."""

    def __init__(self, node: Node, peers: Sequence[str]) -> None:
        self.node = node
        self.peers = [p for p in peers if p != node.name]
        self.incarnation = secrets.randbits(48)
        self.seq: dict[str, int] = {}
        self.sent: dict[str, dict[int, list[int]]] = {}  # peer -> epoch -> [first, last]
        self.conns: dict[str, tuple[object, int]] = {}  # peer -> (connection, its epoch)
        self.epochs = 0
        self.dialled: dict[int, bool] = {}  # epoch -> whether we dialled that connection
        self.received: dict[tuple[str, int, int], list[int]] = {}
        self.downs: dict[str, int] = {}
        self.sending = asyncio.Event()

    def receive(self, message: Any) -> None:
        """Tally ``{seq, From, Inc, Epoch, N}``: count, first, last, not-increasing, gaps."""
        _, sender, incarnation, epoch, seq = message
        key = (str(sender), incarnation, epoch)
        tally = self.received.get(key)
        if tally is None:
            self.received[key] = [1, seq, seq, 0, 0]
            return
        tally[0] += 1
        if seq <= tally[2]:
            tally[3] += 1
        else:
            tally[4] += seq > tally[2] + 1
            tally[2] = seq

    def epoch(self, peer: str) -> int | None:
        """The number of the connection to ``peer`` up now (None: none is). A test peeks
        at the connection table: nodemesh has no public connection id (Erlang has
        ``nodes(connected, #{connection_id => true})``, which nm_chaos.erl uses)."""
        conn = self.node._connections.get(peer)
        if conn is None:
            return None
        known = self.conns.get(peer)
        if known is None or known[0] is not conn:
            self.epochs += 1
            known = self.conns[peer] = (conn, self.epochs)
            self.dialled[self.epochs] = bool(getattr(conn, "outgoing", False))
        return known[1]

    def send_round(self) -> None:
        for peer in self.peers:
            epoch = self.epoch(peer)
            if epoch is None:
                continue
            seq = self.seq.get(peer, 0) + 1
            message = (Atom("seq"), Atom(self.node.name), self.incarnation, epoch, seq)
            try:
                self.node.send_nowait(("chaos", peer), message)
            except NodeDownError:
                continue  # dropped between the check and the send: not sent, not counted
            self.seq[peer] = seq
            self.sent.setdefault(peer, {}).setdefault(epoch, [seq, seq])[1] = seq

    async def sender(self, interval: float) -> None:
        while True:
            await self.sending.wait()
            self.send_round()
            await asyncio.sleep(interval)

    def answer(self, command: str) -> Any:
        if command == "nodes":
            return sorted(self.node.nodes())
        if command == "traffic-on":
            self.sending.set()
            return True
        if command == "traffic-off":
            self.sending.clear()
            current = {peer: self.epoch(peer) for peer in self.peers}
            sent = {peer: list(map(list, spans.items())) for peer, spans in self.sent.items()}
            return {"sent": sent, "current": current, "dialled": self.dialled}
        if command == "report":
            received = [[*key, *tally] for key, tally in self.received.items()]
            return {"received": received, "downs": self.downs}
        if command == "stats":
            return stats()
        return {"error": f"unknown command {command!r}"}


def stats() -> dict[str, int]:
    """Tasks, fds and resident memory of this process (after a full collection)."""
    gc.collect()
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {
        "tasks": len(asyncio.all_tasks()),
        "fds": len(os.listdir("/proc/self/fd")),
        "rss_kib": rss,
    }


async def _serve(args: argparse.Namespace) -> None:
    config = NodeConfig(**json.loads(args.config))
    peers = json.loads(args.peers)
    topology = {"chaos": {"strategy": "epmd", "config": {"hosts": peers, "timeout": 500}}}
    async with Node(args.name, args.cookie, config=config) as node:
        chaos = Chaos(node, peers)
        inbox = node.register("chaos")
        events = node.events()
        if args.traffic:
            chaos.sending.set()
        async with asyncio.TaskGroup() as group, Cluster(node, topology, config=RETRY):
            tasks = [
                group.create_task(_receive(inbox, chaos)),
                group.create_task(_events(events, chaos)),
                group.create_task(chaos.sender(args.interval)),
            ]
            print(f"started {node.name} {chaos.incarnation}", flush=True)
            await _commands(chaos)  # until stdin closes
            for task in tasks:
                task.cancel()
        events.close()


async def _receive(inbox: Any, chaos: Chaos) -> None:
    while True:
        chaos.receive(await inbox.receive())


async def _events(events: Any, chaos: Chaos) -> None:
    async for event in events:
        if isinstance(event, NodeUp):
            print(f"up {event.node}", flush=True)
        elif isinstance(event, NodeDown):
            chaos.downs[event.node] = chaos.downs.get(event.node, 0) + 1
            print(f"down {event.node} {event.reason}", flush=True)


async def _commands(chaos: Chaos) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        ident, _, command = line.decode().strip().partition(" ")
        print(f"reply {ident} {json.dumps(chaos.answer(command))}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--peers", required=True, help="JSON list of node names")
    parser.add_argument("--config", default="{}", help="NodeConfig fields as JSON")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between sends")
    parser.add_argument("--traffic", action="store_true", help="send from the start")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
