"""A call or a PubSub round trip between two real nodes in one process, for callgrind.

    python bench/call_path.py [--path call|pubsub-rtt|pubsub-fanout] [--count N] [--loop L]

Two :class:`Node` objects in one process, EPMD-less on 127.0.0.1 and 127.0.0.2 (one
port), connected over loopback TCP: everything both sides do per operation, sockets
included, with no second process for the scheduler to delay. After a fixed warm-up
(the connection, the kept frame heads), N operations, one at a time:

* ``call``: ``await a.call(("kv", b), {get, <<"user:42">>})`` to an echo
  :class:`GenServer` on b (bench/gen_server.py's Python → Python row).
* ``pubsub-rtt``: a publishes on ``ping``; b's subscriber re-publishes on ``pong``,
  which a awaits with a timeout (bench/pubsub.py's round trip, timed the same way).
* ``pubsub-fanout``: a broadcasts N messages on one topic, then b's subscriber reads
  them all (bench/pubsub.py's throughput, one subscriber node).

It prints the operations, the event-loop iterations per operation (asyncio's loop only:
how many times the loop woke to run callbacks, both nodes together) and the wall time,
which a shared machine makes noisy. The load-independent count is callgrind's, with a
run of ``--count 0`` subtracted (the same warm-up and setup)::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/call_path.py --path call --count 2000   # and --count 0
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from typing import Any

from nodemesh import Atom, Caller, GenServer, Node, NodeConfig, PubSub

REQUEST = (Atom("get"), b"user:42")
CHAT = (Atom("chat"), b"room:lobby", b"hello from a node", 12345)
WARM = 50
TIMEOUT = 60.0  # seconds a pong may take (bench/pubsub.py waits the same way)


class Echo(GenServer):
    """Replies with the request."""

    def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LoopCounter:
    """Counts the iterations of asyncio's own event loop (``_run_once``)."""

    def __init__(self) -> None:
        self.count = 0
        self._patched = False

    def install(self) -> None:
        base = asyncio.base_events.BaseEventLoop
        original = base._run_once  # type: ignore[attr-defined]
        counter = self

        def run_once(loop: Any) -> None:
            counter.count += 1
            original(loop)

        base._run_once = run_once  # type: ignore[attr-defined]
        self._patched = True

    @property
    def active(self) -> bool:
        return self._patched


async def _call(a: Node, b: Node, count: int) -> None:
    await b.start_server(Echo(), name="kv")
    dest = ("kv", b.name)
    for _ in range(WARM):
        await a.call(dest, REQUEST)
    mark = _Mark()
    mark.start()
    for _ in range(count):
        await a.call(dest, REQUEST)
    mark.stop(count)


async def _pubsub(a: Node, b: Node, count: int, fanout: bool) -> None:
    await a.connect(b.name)
    async with PubSub(a) as pa, PubSub(b) as pb:
        await pa.wait_for_remote(1, timeout=10)
        await pb.wait_for_remote(1, timeout=10)
        if fanout:
            await _fanout(pa, pb, count)
        else:
            await _rtt(pa, pb, count)


async def _rtt(pa: PubSub, pb: PubSub, count: int) -> None:
    pings = pb.subscribe("ping", max_queued=0)
    pongs = pa.subscribe("pong", max_queued=0)

    async def echo() -> None:
        async for message in pings:
            await pb.broadcast("pong", message)

    task = asyncio.create_task(echo())
    for i in range(WARM):
        await pa.broadcast("ping", i)
        await pongs.get(TIMEOUT)
    mark = _Mark()
    mark.start()
    for i in range(count):  # each pong waited for with a timeout, as bench/pubsub.py does
        await pa.broadcast("ping", i)
        await pongs.get(TIMEOUT)
    mark.stop(count)
    task.cancel()


async def _fanout(pa: PubSub, pb: PubSub, count: int) -> None:
    lobby = pb.subscribe("room:lobby", max_queued=0)
    for _ in range(WARM):
        await pa.broadcast("room:lobby", CHAT)
    for _ in range(WARM):
        await lobby.get()
    mark = _Mark()
    mark.start()
    for _ in range(count):
        await pa.broadcast("room:lobby", CHAT)
    for _ in range(count):
        await lobby.get()
    mark.stop(count)


COUNTER = LoopCounter()


class _Mark:
    """Prints what one measured stretch cost per operation."""

    def start(self) -> None:
        self._loops = COUNTER.count
        self._started = time.perf_counter()

    def stop(self, count: int) -> None:
        elapsed = time.perf_counter() - self._started
        loops = COUNTER.count - self._loops
        per = f"{loops / count:.3f}" if count and COUNTER.active else "n/a"
        rate = f"{count / elapsed:,.0f}/s" if count and elapsed else "n/a"
        print(f"{count} operations, {per} loop iterations each, {rate} (wall clock, noisy)")


async def run(path: str, count: int) -> None:
    port = _free_port()
    nodes = []
    for name, host in (("a", "127.0.0.1"), ("b", "127.0.0.2")):
        config = NodeConfig(use_epmd=False, port=port, listen_address=host)
        nodes.append(Node(f"{name}@{host}", "bench-cookie", config=config))
    a, b = nodes
    async with a, b:
        if path == "call":
            await _call(a, b, count)
        else:
            await _pubsub(a, b, count, fanout=path == "pubsub-fanout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", choices=["call", "pubsub-rtt", "pubsub-fanout"], default="call")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(run(args.path, args.count))
    else:
        COUNTER.install()
        asyncio.run(run(args.path, args.count))


if __name__ == "__main__":
    main()
