"""How long a visible Python node takes to join an Erlang cluster's ``global``.

    python bench/global_join.py [--joins N]

Two ``erl`` nodes, connected and synced, on a private EPMD; then N times a fresh visible
nodemesh node (``NodeConfig(hidden=False)``) connects to e1 and the script times (1) the
Python node's ``global_sync()`` returning, counted from the connect, and (2) ``global:sync()``
on e2 (which meets the Python node through connect_all) returning. Most of it is the
200 ms global's locker waits before its first try (``loop_the_locker/1``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from nodemesh import Node, NodeConfig
from support.erlang import ErlPeer, running_epmd

COOKIE = "nodemesh-bench-cookie"


async def run(joins: int) -> None:
    with running_epmd() as port:
        env = {"ERL_EPMD_PORT": str(port)}
        e1 = await ErlPeer.start("e1@127.0.0.1", COOKIE, env=env)
        e2 = await ErlPeer.start("e2@127.0.0.1", COOKIE, env=env)
        python_ms: list[float] = []
        erlang_ms: list[float] = []
        try:
            await e1.eval("net_kernel:connect_node('e2@127.0.0.1')")
            await e1.eval("global:sync()")
            config = NodeConfig(hidden=False, epmd_port=port)
            for i in range(joins):
                async with Node(f"join{i}@127.0.0.1", COOKIE, config=config) as py:
                    start = time.monotonic()
                    await py.connect("e1@127.0.0.1")
                    await py.global_sync(timeout=30)
                    python_ms.append((time.monotonic() - start) * 1000)
                    await e2.eval("global:sync()", timeout=30)
                    erlang_ms.append((time.monotonic() - start) * 1000)
        finally:
            await e1.stop()
            await e2.stop()
    for label, values in (("python global_sync", python_ms), ("e2 global:sync()", erlang_ms)):
        print(f"{label}: median {statistics.median(values):.0f} ms, max {max(values):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=10)
    asyncio.run(run(parser.parse_args().joins))


if __name__ == "__main__":
    main()
