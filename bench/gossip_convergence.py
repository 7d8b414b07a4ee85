"""How fast gossip forms a full mesh of local nodes, and what it costs when idle (not a test).

For each N: N - 1 node processes (one Python process each, loopback multicast on a private
port, libcluster's default heartbeat intervals) form their mesh; then, several times, one
more process whose interpreter is already up starts its node and then its cluster, and we
time from that cluster's start until every node sees every other (each process reports the
time, on the machine-wide monotonic clock, at which its connected count changes). Python's
start-up (spawn to ``import nodemesh`` done) is reported beside it, and so is the CPU
time the join cost (every process, from just before the last node starts until the mesh
is whole; and the last node's alone), which varies less with the machine's load than
the wall-clock time does. At the largest N the bench then leaves the cluster idle and
reports CPU and gossip bytes per second per node.

    python bench/gossip_convergence.py [--sizes 4 16 32] [--trials 7] [--idle 10]
                                       [--epmd real|embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

# -- the child: one node ---------------------------------------------------------------------


async def child(name: str, expect: int, port: int, epmd_port: int) -> None:
    from nodemesh.cluster import Cluster, Topology
    from nodemesh.cluster.strategies.gossip import GossipOptions, GossipStrategy
    from nodemesh.runtime.config import NodeConfig
    from nodemesh.runtime.events import NodeDown, NodeUp
    from nodemesh.runtime.node import Node

    # Simultaneous connects in both directions are normal here (each side hears the other);
    # the loser's "handshake failed" warnings would only be noise.
    logging.basicConfig(level=logging.ERROR)
    strategies: list[GossipStrategy] = []

    class Tracked(GossipStrategy):
        def __init__(self, options: GossipOptions) -> None:
            super().__init__(options)
            strategies.append(self)

    say(f"ready {time.monotonic()}")
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()
    pending = bytearray()

    def read_commands() -> None:
        data = os.read(0, 4096)
        pending.extend(data or b"quit\n")
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            lines.put_nowait(line.decode().strip())

    loop.add_reader(0, read_commands)
    assert await lines.get() == "go"
    cpu_at_go = time.process_time()
    node_started = time.monotonic()
    node = Node(name, "bench", config=NodeConfig(epmd_port=epmd_port))
    await node.start()
    events = node.events()
    options = {"port": port, "multicast_if": "127.0.0.1"}
    topology = Topology.create("bench", Tracked, options)
    cluster = Cluster(node, [topology])
    started = time.monotonic()
    await cluster.start()
    say(f"started {started} {started - node_started} {cpu_at_go}")
    watcher = asyncio.create_task(watch(events, node, NodeUp, NodeDown))
    while (command := await lines.get()) != "quit":
        if command == "stats":
            s = strategies[-1].statistics()
            cpu = time.process_time()
            received = s.datagrams_received
            say(f"stats {time.monotonic()} {cpu} {s.bytes_sent} {s.bytes_received} {received}")
    watcher.cancel()
    await cluster.aclose()
    await node.aclose()
    del expect


async def watch(events: Any, node: Any, up: type, down: type) -> None:
    async for event in events:
        if isinstance(event, up | down):
            say(f"count {len(node.nodes())} {time.monotonic()}")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# -- the parent: spawning and timing ---------------------------------------------------------


@dataclass
class Proc:
    proc: asyncio.subprocess.Process
    spawned: float
    ready: float = 0.0
    started: float = 0.0
    node_start: float = 0.0  # how long Node.start took (listen, EPMD registration)
    cpu_at_go: float = 0.0  # its process_time() when told to start its node
    count: int = 0
    counts: list[tuple[int, float]] = field(default_factory=list)
    stats: asyncio.Queue[list[float]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")


async def spawn(name: str, n: int, port: int, epmd_port: int) -> Proc:
    spawned = time.monotonic()
    args = [sys.executable, __file__, "--child", name, str(n), str(port), str(epmd_port)]
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    p = Proc(proc, spawned)
    ready = asyncio.get_running_loop().create_future()
    p.task = asyncio.create_task(follow(p, ready))
    await ready
    return p


async def follow(p: Proc, ready: asyncio.Future[None]) -> None:
    assert p.proc.stdout is not None
    async for raw in p.proc.stdout:
        kind, *rest = raw.decode().split()
        if kind == "ready":
            p.ready = float(rest[0])
            ready.set_result(None)
        elif kind == "started":
            p.started, p.node_start, p.cpu_at_go = (float(x) for x in rest[:3])
        elif kind == "count":
            p.count = int(rest[0])
            p.counts.append((p.count, float(rest[1])))
        elif kind == "stats":
            p.stats.put_nowait([float(x) for x in rest])


async def until(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the cluster did not form")
        await asyncio.sleep(0.005)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def stop(p: Proc) -> None:
    if p.proc.returncode is None:
        p.send("quit")
        try:
            await asyncio.wait_for(p.proc.wait(), 10)
        except TimeoutError:
            p.proc.kill()
            await p.proc.wait()


@dataclass
class Result:
    n: int
    converge: list[float]
    startup: list[float]
    node_start: list[float] = field(default_factory=list)
    cpu_all: list[float] = field(default_factory=list)  # CPU seconds of every process
    cpu_last: list[float] = field(default_factory=list)  # of the last node's process
    datagrams: list[float] = field(default_factory=list)  # gossip datagrams received, all
    idle: tuple[float, float, float] | None = None  # CPU %, bytes/s out, bytes/s in


async def measure(n: int, trials: int, idle: float, real_epmd: bool) -> Result:
    """One size. ``real_epmd``: run Erlang's epmd, as on a real host, rather than let the
    first node embed one: with 32 nodes on one host, every lookup then goes through that
    one Python process, a bottleneck no multi-host deployment has."""
    port, epmd_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    epmd = None
    if real_epmd:
        epmd = await asyncio.create_subprocess_exec("epmd", "-port", str(epmd_port))
        await wait_epmd(epmd_port)
    try:
        return await _measure(n, trials, idle, port, epmd_port)
    finally:
        if epmd is not None:
            epmd.kill()
            await epmd.wait()


async def wait_epmd(port: int) -> None:
    for _ in range(500):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        return
    raise TimeoutError("epmd did not start")


async def _measure(n: int, trials: int, idle: float, port: int, epmd_port: int) -> Result:
    base = [await spawn(f"b{i}@127.0.0.1", n, port, epmd_port) for i in range(n - 1)]
    for p in base:
        p.send("go")
    await until(lambda: all(p.count == n - 2 for p in base))
    result = Result(n, [], [p.ready - p.spawned for p in base])
    last: Proc | None = None
    for trial in range(trials):
        last = await spawn(f"last{trial}@127.0.0.1", n, port, epmd_port)
        result.startup.append(last.ready - last.spawned)
        before = await sample(base)
        last.send("go")
        everyone = [*base, last]
        await until(lambda e=everyone: all(p.count == n - 1 for p in e) and e[-1].started > 0)
        after = await sample(everyone)
        start = last.started
        result.node_start.append(last.node_start)
        cpu_base = sum(b[1] - a[1] for a, b in zip(before, after, strict=False))
        result.cpu_last.append(after[-1][1] - last.cpu_at_go)
        result.cpu_all.append(cpu_base + result.cpu_last[-1])
        result.datagrams.append(sum(b[4] - a[4] for a, b in zip(before, after, strict=False)))
        result.datagrams[-1] += after[-1][4]
        done = max(next(t for c, t in reversed(p.counts) if c == n - 1) for p in everyone)
        result.converge.append(done - start)
        if trial < trials - 1:
            await stop(last)
            await until(lambda: all(p.count == n - 2 for p in base))
    if idle and last is not None:
        result.idle = await idle_cost([*base, last], idle)
    for p in reversed([*base, last]):  # b0 (which hosts the embedded EPMD) last
        if p is not None:
            await stop(p)
    return result


async def sample(procs: list[Proc]) -> list[list[float]]:
    """Each process's ``stats`` line: monotonic time, CPU seconds, gossip bytes sent and
    received, gossip datagrams received."""
    for p in procs:
        p.send("stats")
    return [await p.stats.get() for p in procs]


async def idle_cost(procs: list[Proc], seconds: float) -> tuple[float, float, float]:
    first = await sample(procs)
    await asyncio.sleep(seconds)
    second = await sample(procs)
    cpu, out, into = [], [], []
    for a, b in zip(first, second, strict=True):
        wall = b[0] - a[0]
        cpu.append((b[1] - a[1]) / wall * 100)
        out.append((b[2] - a[2]) / wall)
        into.append((b[3] - a[3]) / wall)
    return statistics.mean(cpu), statistics.mean(out), statistics.mean(into)


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.1f} {max(values) * 1000:7.1f}"


async def main(args: argparse.Namespace) -> None:
    results = []
    real_epmd = args.epmd == "real" and shutil.which("epmd") is not None
    for n in args.sizes:
        idle = args.idle if n == max(args.sizes) else 0
        results.append(await measure(n, args.trials, idle, real_epmd))
        print(f"N={n} done", file=sys.stderr, flush=True)
    epmd = "Erlang's epmd" if real_epmd else "an embedded EPMD in the first node"
    print(f"gossip convergence, {os.cpu_count()} CPUs, {epmd}, {args.trials} trials")
    print("(median and max in ms)")
    print(" N   converge(med  max)   python start-up(med  max)   Node.start(med  max)")
    for r in results:
        print(f"{r.n:2d}   {ms(r.converge)}       {ms(r.startup)}          {ms(r.node_start)}")
    print("CPU of the join (load-independent-ish; median and max in ms), gossip datagrams")
    print(" N   all processes(med  max)   last node(med  max)   datagrams received(med)")
    for r in results:
        dgrams = statistics.median(r.datagrams)
        print(f"{r.n:2d}   {ms(r.cpu_all)}           {ms(r.cpu_last)}         {dgrams:6.0f}")
    for r in results:
        if r.idle:
            cpu, out, into = r.idle
            print(
                f"idle at N={r.n}, per node: CPU {cpu:.2f} % of a core (whole process), "
                f"gossip {out:.0f} B/s sent, {into:.0f} B/s received"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        import nodemesh  # noqa: F401  (start-up is measured up to here)

        name, n, port, epmd = sys.argv[2:6]
        asyncio.run(child(name, int(n), int(port), int(epmd)))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 32])
        parser.add_argument("--trials", type=int, default=7)
        parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle sampling")
        parser.add_argument(
            "--epmd", choices=["real", "embedded"], default="real", help="[real, if installed]"
        )
        asyncio.run(main(parser.parse_args()))
