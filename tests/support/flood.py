"""A handshake flood: many bad or silent TCP connections to a distribution port.

Run as a script in its own process (so it has its own core and event loop)::

    python flood.py --port 4370 --count 2000 --rate 400

It opens ``count`` connections to ``host:port`` at about ``rate`` per second, from
``sources`` loopback addresses in turn (from ``source`` on), cycling through the
``modes``: ``silent`` (connect, say nothing), ``garbage`` (bytes that are no handshake
message), ``named`` (a valid send_name, then silence: the attacker that costs the node a
challenge). Each socket is held until the node closes it or ``hold`` seconds pass;
at most ``open`` are held at once. It prints ``flooding`` when the first connection is
made and, at the end, one JSON line with counts. Loopback only: it refuses other hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence

from nodemesh.dist import handshake
from nodemesh.dist.flags import default_flags

GARBAGE = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def send_name(index: int) -> bytes:
    """A valid send_name from ``flood<index>@127.0.0.1`` (erl_dist_protocol, send_name)."""
    hs = handshake.Initiator(f"flood{index}@127.0.0.1", "x", default_flags(), 1)
    return hs.data_to_send()


async def one(
    target: tuple[str, int, str], mode: str, index: int, hold: float, counts: Counter[str]
) -> None:
    """Open one connection from ``source`` to ``host:port`` in ``mode``; hold it until the
    node closes it."""
    host, port, source = target
    connect = asyncio.open_connection(host, port, local_addr=(source, 0))
    try:
        reader, writer = await asyncio.wait_for(connect, hold)
    except (OSError, TimeoutError):
        counts["connect_failed"] += 1
        return
    counts["opened"] += 1
    try:
        if mode == "garbage":
            writer.write(GARBAGE)
        elif mode == "named":
            writer.write(send_name(index))
        async with asyncio.timeout(hold):
            while await reader.read(4096):
                pass
        counts[f"closed_by_node_{mode}"] += 1
    except TimeoutError:
        counts[f"held_{mode}"] += 1
    except OSError:
        counts[f"reset_{mode}"] += 1
    finally:
        writer.close()


async def flood(args: argparse.Namespace) -> dict[str, float]:
    """Run the flood; return the counts and the duration."""
    counts: Counter[str] = Counter()
    slots = asyncio.Semaphore(args.open)
    started = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()
    first_source = ipaddress.ip_address(args.source)

    async def held(mode: str, index: int) -> None:
        try:
            source = str(first_source + index % args.sources)
            await one((args.host, args.port, source), mode, index, args.hold, counts)
        finally:
            slots.release()

    for index in range(args.count):
        await slots.acquire()
        mode = args.modes[index % len(args.modes)]
        task = asyncio.create_task(held(mode, index))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if index == 0:
            print("flooding", flush=True)
        # Pace the connects: the flood should last long enough for peers to try during it.
        delay = started + (index + 1) / args.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    sent = time.monotonic() - started
    await asyncio.gather(*tasks)
    return {
        **counts,
        "seconds_to_open": round(sent, 2),
        "seconds": round(time.monotonic() - started, 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=400.0, help="connections per second")
    parser.add_argument("--open", type=int, default=1000, help="sockets held at once")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds to hold a socket")
    parser.add_argument("--source", default="127.0.0.2", help="first source address")
    parser.add_argument("--sources", type=int, default=1, help="source addresses, in turn")
    parser.add_argument("--modes", nargs="+", default=["silent", "garbage", "named"])
    args = parser.parse_args(argv)
    last_source = ipaddress.ip_address(args.source) + args.sources - 1
    if not all(ipaddress.ip_address(a).is_loopback for a in (args.host, args.source, last_source)):
        parser.error("the flood only targets loopback addresses")
    result = asyncio.run(flood(args))
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
