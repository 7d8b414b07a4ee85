"""The message path alone, in one process: no sockets, no peer, no scheduler noise.

    python bench/message_path.py [--messages N] [--trials T] [--path recv-reg|recv-pid|send]

* ``recv-reg`` / ``recv-pid``: N REG_SEND (to a registered name) or SEND_SENDER (to a
  pid) frames fed to ``Connection._frames`` in 64 KiB chunks, as ``data_received``
  gets them: frame split, control parse, dispatch, ``Mailbox.deliver``.
* ``send``: N ``await node.send(remote_pid, msg)`` into a connection whose ``write``
  drops the bytes: routing, frame building.
* ``send-reg``: the same to a registered name, ``await node.send(("bench", node), msg)``
  (REG_SEND from the node's system pid), as ``bench/dist.py``'s senders do.
* ``recv-pubsub``: N Phoenix.PubSub ``forward_to_local`` messages to the adapter worker
  (REG_SEND), fed as above with a pass through the event loop after each chunk, then
  read from a ``PubSub`` subscription: what a subscriber node does per broadcast.
  ``--one-per-read``: one message per read, each read before the next (as in a round
  trip, where no batch forms).

It prints the best of T trials in msg/s. On a shared machine wall time is noisy; for a
load-independent figure count instructions instead (docs/benchmarks.md)::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/message_path.py --path recv-reg --messages 5000 --trials 1

and subtract a ``--messages 0`` run. To compare with an older tree, put its ``src`` first
on ``PYTHONPATH``: the script also runs against the runtime as it was before the
ConnectionTable split (``nodemesh.runtime.connection``), for that comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from nodemesh import Atom, Node, Pid, PubSub
from nodemesh.dist import control

CHAT = (Atom("chat"), b"room:lobby", b"hello from a node", 12345)
PEER = "b@127.0.0.1"


class Sink:
    """A connection to PEER that drops what is written."""

    paused = False
    closed = False
    peer = PEER

    def write(self, frame: bytes) -> None:
        pass


def _connection(node: Node) -> Any:
    """A Connection of ``node`` past its handshake, and PEER wired to a Sink."""
    table: Any = node._connections
    try:
        from nodemesh.runtime._connection import Connection

        conn: Any = Connection(table, None)
        table.connections[PEER] = Sink()
    except ImportError:  # a tree from before the split: Connection(node, ...)
        from nodemesh.runtime.connection import Connection  # type: ignore[import-not-found, no-redef]

        conn = Connection(node, None)  # type: ignore[arg-type]
        table[PEER] = Sink()
    conn._hs = None
    return conn


async def run(path: str, messages: int, trials: int, one_per_read: bool = False) -> float:
    node = Node("a@127.0.0.1", "bench-cookie")
    conn = _connection(node)
    box = node.register("bench")
    sender = node.mailbox().pid
    remote: Any = Pid(Atom(PEER), 5, 0, 1)
    if path == "send-reg":  # REG_SEND from the system pid that Node.start makes
        node._system = node.mailbox(max_queued=0)
        remote, path = ("bench", PEER), "send"
    if path == "recv-pubsub":
        return await run_pubsub(node, conn, sender, messages, trials, one_per_read)
    if path == "recv-reg":
        frame = control.reg_send(sender, Atom("bench"), CHAT)
    else:
        frame = control.send(box.pid, CHAT, sender)
    data = frame * messages
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    best = 0.0
    for trial in range(trials):
        if trial and path != "send":  # empty the mailbox between trials, not after the last
            while len(box):
                box.receive_nowait()
        started = time.perf_counter()
        if path == "send":
            for _ in range(messages):
                await node.send(remote, CHAT)
        else:
            for chunk in chunks:
                conn._frames(chunk)
        elapsed = time.perf_counter() - started
        if path != "send":
            assert len(box) == messages, f"{len(box)} of {messages} delivered"
        best = max(best, messages / elapsed if elapsed else 0.0)
    return best


async def run_pubsub(
    node: Node, conn: Any, sender: Pid, messages: int, trials: int, one_per_read: bool
) -> float:
    async with PubSub(node) as pubsub:
        subscription = pubsub.subscribe("room:lobby", max_queued=0)
        forward = (Atom("forward_to_local"), b"room:lobby", CHAT, Atom("Elixir.Phoenix.PubSub"))
        frame = control.reg_send(sender, pubsub.groups[0], forward)
        data, size = frame * messages, len(frame) if one_per_read else 65536
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        best = 0.0
        for _ in range(trials):
            started = time.perf_counter()
            if one_per_read:
                for chunk in chunks:
                    conn._frames(chunk)
                    await subscription.get()
            else:
                for chunk in chunks:
                    conn._frames(chunk)
                    await asyncio.sleep(0)  # the loop runs between two reads of a socket
                for _ in range(messages):
                    await subscription.get()
            elapsed = time.perf_counter() - started
            best = max(best, messages / elapsed if elapsed else 0.0)
        return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=30, help="best of this many")
    parser.add_argument(
        "--path",
        choices=["recv-reg", "recv-pid", "send", "send-reg", "recv-pubsub"],
        default=None,
    )
    parser.add_argument("--one-per-read", action="store_true", help="recv-pubsub: no batches")
    args = parser.parse_args()
    for path in [args.path] if args.path else ["recv-reg", "recv-pid", "send"]:
        rate = asyncio.run(run(path, args.messages, args.trials, args.one_per_read))
        print(f"{path:9} {rate:11,.0f} msg/s (best of {args.trials} x {args.messages:,})")


if __name__ == "__main__":
    main()
