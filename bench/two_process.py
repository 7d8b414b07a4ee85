"""CPU per operation on each side, two processes (issue 9 and 8's round trips, profiled).

Usage::

    python bench/two_process.py call [N]      # sequential gen_server calls, a → b
    python bench/two_process.py pubsub [N]    # PubSub ping → pong round trips

Starts a server node ``b`` in a child process and runs N operations from a client node
``a`` in this one (both on nodemesh's loop runner: uvloop when installed), then prints
the median round trip and user/system CPU per operation on each side: the client's from
``getrusage`` over the measured operations, the server's from ``/proc`` (warm-up
included). ``strace -f -c`` over this command counts system calls per operation. Wall
clock here is as noisy as the machine; bench/gen_server.py and bench/pubsub.py are the
benchmarks of record.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from nodemesh import Atom, Caller, GenServer, Node, NodeConfig, PubSub
from nodemesh._loop import run as run_loop

REQUEST = (Atom("get"), b"user:42")
WARM = 500
SERVER = "b@127.0.0.2"


class Echo(GenServer):
    def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


def _config(address: str, port: int) -> NodeConfig:
    return NodeConfig(use_epmd=False, port=port, listen_address=address)


async def _until_stdin_closes() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def server(path: str, port: int) -> None:
    async with Node(SERVER, "c", config=_config("127.0.0.2", port)) as b:
        if path == "call":
            await b.start_server(Echo(), name="kv")
            print("ready", flush=True)
            await _until_stdin_closes()
            return
        async with PubSub(b) as pb:
            pings = pb.subscribe("ping", max_queued=0)

            async def echo() -> None:
                async for message in pings:
                    await pb.broadcast("pong", message)

            task = asyncio.create_task(echo())
            print("ready", flush=True)
            await _until_stdin_closes()
            task.cancel()


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def client(path: str, port: int, n: int) -> tuple[float, float, float]:
    """Median round trip (µs) and user, system CPU (µs) per operation."""
    async with Node("a@127.0.0.1", "c", config=_config("127.0.0.1", port)) as a:
        if path == "call":
            dest = ("kv", SERVER)

            async def once(_: int) -> None:
                await a.call(dest, REQUEST)

            return await _measure(once, n)
        await a.connect(SERVER)
        async with PubSub(a) as pa:
            await pa.wait_for_remote(1, timeout=10)
            pongs = pa.subscribe("pong", max_queued=0)

            async def round_trip(i: int) -> None:
                await pa.broadcast("ping", i)
                await pongs.get(60.0)

            return await _measure(round_trip, n)


async def _measure(op: Any, n: int) -> tuple[float, float, float]:
    for i in range(WARM):
        await op(i)
    before = _cpu()
    times = []
    for i in range(n):
        start = time.perf_counter_ns()
        await op(i)
        times.append(time.perf_counter_ns() - start)
    after = _cpu()
    user, system = ((b - a) / n * 1e6 for a, b in zip(before, after, strict=True))
    return statistics.median(times) / 1e3, user, system


def _server_cpu(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])  # utime, stime in clock ticks


def main() -> None:
    if sys.argv[1] == "server":
        run_loop(server(sys.argv[2], int(sys.argv[3])))
        return
    path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
    srv = subprocess.Popen(
        [sys.executable, __file__, "server", path, str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert srv.stdin is not None and srv.stdout is not None
    assert srv.stdout.readline().strip() == "ready"
    before = _server_cpu(srv.pid)
    median, user, system = run_loop(client(path, port, n))
    after = _server_cpu(srv.pid)
    srv.stdin.write("\n")
    srv.stdin.flush()
    srv.wait()
    tick = os.sysconf("SC_CLK_TCK")
    s_user, s_system = ((b - a) / tick / n * 1e6 for a, b in zip(before, after, strict=True))
    print(
        f"{path}: median {median:.1f} µs; client user {user:.1f} sys {system:.1f} µs/op; "
        f"server user {s_user:.1f} sys {s_system:.1f} µs/op (warm-up included)"
    )


if __name__ == "__main__":
    main()
