"""Pub/sub fan-out benchmark: nodemesh PubSub beside Redis pub/sub and Erlang's pg + send.

    python bench/pubsub.py [--messages N] [--roundtrips M] [--repeat R] [--quick]

One publisher, subscribers on 3 other processes (nodes), each its own OS process on
127.0.0.1, for three systems doing the same work:

* **nodemesh**: ``PubSub.broadcast`` (Phoenix.PubSub's PG2 protocol over a pg scope);
  each subscriber node has one ``subscribe("room:lobby")``;
* **Redis**: redis-py (synchronous, hiredis) ``PUBLISH`` to a redis-server this script
  starts, three subscriber processes; the message is nodemesh's encoding of the term
  (the subscribers decode it, as a node does); publishing one request at a time, and
  pipelined in 100s;
* **Erlang**: compiled ``pubsub_bench.erl``, a pg group per topic and
  ``[Pid ! Msg || Pid <- pg:get_members(Scope, Topic)]`` per message.

Throughput: the publisher publishes N copies of ``{chat, <<"room:lobby">>, <<"hello
from a node">>, 12345}`` as fast as it can, then a stop marker; every subscriber answers
the marker with its count (checked to be N); the time runs from the first publish to the
third answer, so nothing still in a buffer counts. Round trip: the publisher publishes
on ``ping``, one subscriber re-publishes what it got on ``pong``, to which the
publisher subscribed; M of them after a warm-up, median and p99.

Reuses bench/dist.py's process plumbing (``Proc``), EPMD and Redis server helpers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dist import (
    HERE,
    HOST,
    Bench,
    BenchError,
    compile_erlang,
    machine,
    redis_server,
    start_epmd,
)
from nodemesh import Atom, Node, NodeConfig, PubSub
from nodemesh._loop import run as run_loop
from nodemesh.term import decode, encode

CHAT = (Atom("chat"), b"room:lobby", b"hello from a node", 12345)
STOP, WARM = Atom("stop"), Atom("warm_up")
LOBBY = "room:lobby"
TIMEOUT = 60.0
SUBSCRIBERS = 3
PIPELINE = 100


# -- nodemesh roles ------------------------------------------------------------------------
async def py_sub(args: argparse.Namespace) -> dict[str, Any]:
    """Count messages on room:lobby until the stop marker; with --echo answer pings."""
    config = NodeConfig(epmd_port=args.epmd_port, listen_address=HOST)
    async with Node(args.name, args.cookie, config=config) as node, PubSub(node) as ps:
        lobby = ps.subscribe(LOBBY)
        pings = ps.subscribe("ping") if args.echo else None
        async with asyncio.TaskGroup() as tasks:
            if pings is not None:
                tasks.create_task(_echo(ps, pings))
            print("ready", flush=True)
            get = lobby.get
            await get(TIMEOUT)  # the first message: CPU is counted from here
            cpu, count = time.process_time_ns(), 1
            while await get(TIMEOUT) != STOP:
                count += 1
            cpu = time.process_time_ns() - cpu
            await ps.broadcast("done", count)
            if pings is not None:
                pings.close()
    return {"count": count, "cpu_ns": cpu}


async def _echo(ps: PubSub, pings: Any) -> None:
    async for message in pings:
        await ps.broadcast("pong", message)


async def py_pub(args: argparse.Namespace) -> dict[str, Any]:
    config = NodeConfig(epmd_port=args.epmd_port, listen_address=HOST)
    async with Node(args.name, args.cookie, config=config) as node, PubSub(node) as ps:
        pongs, done = ps.subscribe("pong"), ps.subscribe("done")
        for peer in args.peers.split(","):
            if not await node.connect(peer):
                raise BenchError(f"cannot connect to {peer}")
        await ps.wait_for_remote(SUBSCRIBERS, timeout=TIMEOUT)
        print("ready", flush=True)
        while True:  # the echo may not know our worker yet: ping until it answers
            await ps.broadcast("ping", WARM)
            try:
                if await pongs.get(0.1) == WARM:
                    break
            except TimeoutError:
                continue
        rtts = []
        for _ in range(args.trips):
            start = time.perf_counter_ns()
            await ps.broadcast("ping", CHAT)
            while await pongs.get(TIMEOUT) != CHAT:
                pass  # a late answer to a warm-up ping
            rtts.append(time.perf_counter_ns() - start)
        broadcast = ps.broadcast
        start, cpu = time.perf_counter_ns(), time.process_time_ns()
        for _ in range(args.count):
            await broadcast(LOBBY, CHAT)
        await broadcast(LOBBY, STOP)
        counts = [await done.get(TIMEOUT) for _ in range(SUBSCRIBERS)]
        elapsed, cpu = time.perf_counter_ns() - start, time.process_time_ns() - cpu
    return {"elapsed_ns": elapsed, "cpu_ns": cpu, "counts": counts, "rtt_ns": rtts}


# -- Redis roles (redis-py, synchronous: its fastest client) -------------------------------
def _redis(args: argparse.Namespace) -> Any:
    import redis  # the bench extra; only the Redis roles need it

    return redis.Redis(host=HOST, port=args.redis_port)


def _listen(client: Any, *channels: str) -> Iterator[tuple[bytes, bytes]]:
    """(channel, payload) of messages on ``channels``, once Redis confirmed them all."""
    pubsub = client.pubsub()
    pubsub.subscribe(*channels)
    confirmed = 0
    while confirmed < len(channels):
        msg = pubsub.get_message(timeout=TIMEOUT)
        if msg is None:
            raise BenchError(f"Redis did not confirm the subscriptions to {channels}")
        confirmed += msg["type"] == "subscribe"
    return ((m["channel"], m["data"]) for m in pubsub.listen() if m["type"] == "message")


def redis_sub(args: argparse.Namespace) -> dict[str, Any]:
    client = _redis(args)
    messages = _listen(client, LOBBY, *(["ping"] if args.echo else []))
    print("ready", flush=True)
    count, cpu = 0, 0
    for channel, data in messages:
        if channel == b"ping":
            client.publish("pong", encode(decode(data)))
        elif data == b"stop":
            break
        else:
            decode(data)
            count += 1
            if count == 1:  # CPU is counted from the first message
                cpu = time.process_time_ns()
    cpu = time.process_time_ns() - cpu
    client.publish("done", str(count))
    return {"count": count, "cpu_ns": cpu}


def redis_pub(args: argparse.Namespace) -> dict[str, Any]:
    client = _redis(args)
    replies = _listen(client, "pong", "done")
    print("ready", flush=True)
    rtts = []
    for _ in range(args.trips):
        start = time.perf_counter_ns()
        client.publish("ping", encode(CHAT))
        decode(next(replies)[1])
        rtts.append(time.perf_counter_ns() - start)
    start, cpu = time.perf_counter_ns(), time.process_time_ns()
    if args.batch > 1:
        pipe = client.pipeline(transaction=False)
        for i in range(1, args.count + 1):
            pipe.publish(LOBBY, encode(CHAT))
            if i % args.batch == 0 or i == args.count:
                pipe.execute()
    else:
        publish = client.publish
        for _ in range(args.count):
            publish(LOBBY, encode(CHAT))
    client.publish(LOBBY, b"stop")
    counts = [int(next(replies)[1]) for _ in range(SUBSCRIBERS)]
    elapsed, cpu = time.perf_counter_ns() - start, time.process_time_ns() - cpu
    return {"elapsed_ns": elapsed, "cpu_ns": cpu, "counts": counts, "rtt_ns": rtts}


ROLES = {"py-sub": py_sub, "py-pub": py_pub, "redis-sub": redis_sub, "redis-pub": redis_pub}


# -- the orchestrator ----------------------------------------------------------------------
class Run(Bench):
    """What one system's measurement shares (bench/dist.py's :class:`Bench`: EPMD,
    cookie, Erlang's roles, processes), with this benchmark's command lines.
    """

    def python(self, role: str, name: str = "", **extra: Any) -> list[str]:
        argv = [sys.executable, SELF_PUBSUB, "--role", role, "--name", name]
        argv += ["--cookie", self.cookie, "--epmd-port", str(self.epmd_port)]
        argv += ["--redis-port", str(self.redis_port or 0)]
        for key, value in extra.items():
            if value is True:
                argv.append(f"--{key}")
            elif value is not False:
                argv += [f"--{key}", str(value)]
        return argv

    def erlang(self, name: str, *role: str) -> list[str]:
        assert self.erl_dir is not None
        argv = ["erl", "-noshell", "-name", name, "-setcookie", self.cookie, "-pa", self.erl_dir]
        argv += ["-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-start_epmd", "false"]
        return [*argv, "-run", "pubsub_bench", "main", *role]


SELF_PUBSUB = str(HERE / "pubsub.py")


async def measure(run: Run, system: str, messages: int, trips: int, batch: int = 1) -> Row:
    """Three subscribers (the first echoes pings), then the publisher; its result."""
    env = {"ERL_EPMD_PORT": str(run.epmd_port)}
    subs, names = [], []
    for i in range(SUBSCRIBERS):
        name = run.name("sub")
        if system == "erlang":
            argv = run.erlang(name, "sub", "echo" if i == 0 else "quiet")
        else:
            argv = run.python(f"{system}-sub", name, echo=i == 0)
        subs.append(await run.spawn(f"{system} sub", argv, env))
        names.append(name)
    for sub in subs:
        await sub.ready()
    name = run.name("pub")
    if system == "erlang":
        argv = run.erlang(name, "pub", str(messages), str(trips), *names)
    else:
        argv = run.python(
            f"{system}-pub", name, peers=",".join(names), count=messages, trips=trips, batch=batch
        )
    pub = await run.spawn(f"{system} pub", argv, env)
    result = await pub.result()
    sub_cpu = [(await sub.result())["cpu_ns"] for sub in subs]
    if result["counts"] != [messages] * SUBSCRIBERS:
        raise BenchError(f"{system}: subscribers counted {result['counts']} of {messages}")
    warm = min(200, trips // 10)
    return Row(
        system,
        messages / result["elapsed_ns"] * 1e9,
        result["rtt_ns"][warm:],
        pub_cpu=result["cpu_ns"] / messages / 1e3,
        sub_cpu=statistics.mean(sub_cpu) / messages / 1e3,
    )


@dataclass
class Row:
    label: str
    rate: float
    rtt: list[int]
    pub_cpu: float = 0.0  # µs of the publisher's CPU per message (throughput part)
    sub_cpu: float = 0.0  # µs of a subscriber's CPU per message, mean of the three


LABELS = {
    "py": "nodemesh PubSub (Python nodes)",
    "redis": "Redis pub/sub, redis-py, one PUBLISH at a time",
    "redis-pipelined": f"Redis pub/sub, redis-py, PUBLISH pipelined in {PIPELINE}s",
    "erlang": "Erlang/OTP pg + send",
}


async def run_once(args: argparse.Namespace) -> list[Row]:
    epmd = await start_epmd()
    erl_dir = compile_erlang("pubsub_bench.erl")
    run = Run(epmd.port, erl_dir)
    rows = []
    try:
        rows.append(await measure(run, "py", args.messages, args.roundtrips))
        async with redis_server() as port:
            if port is not None:
                run.redis_port = port
                rows.append(await measure(run, "redis", args.messages, args.roundtrips))
                pipelined = await measure(run, "redis", args.messages, 0, batch=PIPELINE)
                pipelined.label = "redis-pipelined"
                rows.append(pipelined)
        if erl_dir is not None:
            rows.append(await measure(run, "erlang", args.messages, args.roundtrips))
    finally:
        await run.aclose()
        await epmd.aclose()
        if erl_dir:
            shutil.rmtree(erl_dir, ignore_errors=True)
    for row in rows:
        row.label = LABELS.get(row.label, row.label)
    return rows


def table(runs: list[list[Row]]) -> str:
    lines = [
        "| system (1 publisher → subscribers on 3 nodes) | messages/s (runs' range) "
        "| deliveries/s | round trip median µs | round trip p99 µs "
        "| CPU µs/msg: publisher | CPU µs/msg: each subscriber |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for same in zip(*runs, strict=True):
        rates = [row.rate for row in same]
        rtts = [t for row in same for t in row.rtt]
        rate = statistics.median(rates)
        text = f"{rate:,.0f}" + (
            f" ({min(rates):,.0f} to {max(rates):,.0f})" if len(rates) > 1 else ""
        )
        if rtts:
            cuts = statistics.quantiles(rtts, n=100, method="inclusive")
            median, p99 = f"{statistics.median(rtts) / 1e3:.0f}", f"{cuts[98] / 1e3:.0f}"
        else:
            median = p99 = "n/a"
        deliveries = f"{rate * SUBSCRIBERS:,.0f}"
        pub_cpu = statistics.median(row.pub_cpu for row in same)
        sub_cpu = statistics.median(row.sub_cpu for row in same)
        lines.append(
            f"| {same[0].label} | {text} | {deliveries} | {median} | {p99} "
            f"| {pub_cpu:.1f} | {sub_cpu:.1f} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000, help="messages published")
    parser.add_argument("--roundtrips", type=int, default=2_000, help="timed round trips")
    parser.add_argument("--repeat", type=int, default=3, help="whole runs; rates: the median")
    parser.add_argument("--quick", action="store_true", help="5,000 messages, 200 round trips")
    role = parser.add_argument_group("one side of a measurement (used by the run itself)")
    role.add_argument("--role", choices=list(ROLES))
    role.add_argument("--name", default="")
    role.add_argument("--cookie", default="")
    role.add_argument("--epmd-port", type=int, default=0)
    role.add_argument("--redis-port", type=int, default=0)
    role.add_argument("--peers", default="")
    role.add_argument("--count", type=int, default=0)
    role.add_argument("--trips", type=int, default=0)
    role.add_argument("--batch", type=int, default=1)
    role.add_argument("--echo", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.roundtrips = 5_000, 200
    return args


def main() -> None:
    args = parse_args()
    if args.role:
        role = ROLES[args.role]
        result = run_loop(role(args)) if asyncio.iscoroutinefunction(role) else role(args)
        print("result", json.dumps(result), flush=True)
        return
    started, load = time.monotonic(), os.getloadavg()[0]
    runs = []
    for _ in range(args.repeat):
        try:
            runs.append(asyncio.run(run_once(args)))
        except BenchError as exc:
            sys.exit(f"benchmark failed: {exc}")
    print(f"{machine()}; load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(
        f"{args.messages:,} messages to {SUBSCRIBERS} subscriber nodes, "
        f"{args.roundtrips:,} round trips, {args.repeat} run(s) in "
        f"{time.monotonic() - started:.0f} s\n"
    )
    print(table(runs))


if __name__ == "__main__":
    main()
