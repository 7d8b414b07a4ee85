"""A handshake flood of 2,000 bad and silent connections: new peers still get in.

The flood runs in its own process (tests/support/flood.py), loopback only, bounded in
count and time, a third each silent, garbage, and a valid name then silence. Part of it
comes from 127.0.0.1, the address the real peers use, so they compete for the same
per-address slots. While it runs, fresh Python nodes and a real `erl` connect to the
flooded node and ping it, again and again; every ping must answer pong, and the node
logs a handful of warning lines, not thousands.

Measured before the fix (2 shared cores): 39 of 962 Python pings and 21 of 759 erl
pings answered pong, with 3,661 warning lines. After, in runs beside other test suites:
every one of 1,200-2,500 Python and 350-2,200 erl pings, with 4-8 warning lines.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.node import Node
from support.erlang import ErlPeer, running_epmd

pytestmark = pytest.mark.interop

FLOOD = Path(__file__).parent.parent / "support" / "flood.py"
CONNECTIONS = 2000


@pytest.fixture
def epmd_port() -> Iterator[int]:
    """A real epmd on a private port (overrides the embedded-EPMD fixture)."""
    with running_epmd() as port:
        yield port


async def start_flood(port: int) -> asyncio.subprocess.Process:
    """Start the flood against ``port``; return once its first connection is made."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(FLOOD),
        "--port",
        str(port),
        "--count",
        str(CONNECTIONS),
        "--rate",
        "300",
        "--hold",
        "3",
        "--source",  # the peers' own address, and four more
        "127.0.0.1",
        "--sources",
        "5",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 10)
    assert line == b"flooding\n", line
    return proc


async def python_pings(
    target: str, epmd_port: int, results: list[Any], stop: asyncio.Event
) -> None:
    """Start a fresh Python node, ping ``target``, stop it; repeat until ``stop``."""
    config = NodeConfig(epmd_port=epmd_port)
    index = 0
    while not stop.is_set():
        index += 1
        async with Node(f"fresh{index}@127.0.0.1", COOKIE, config=config) as fresh:
            results.append(await fresh.ping_result(target))


async def erl_pings(erl: ErlPeer, target: str, results: list[Any], stop: asyncio.Event) -> None:
    """``net_adm:ping`` from a real erl, then disconnect; repeat until ``stop``."""
    expr = f"(fun() -> R = net_adm:ping('{target}'), erlang:disconnect_node('{target}'), R end)()"
    while not stop.is_set():
        results.append(await erl.eval(expr))


def report(summary: Any, py_results: list[Any], erl_results: list[Any], lines: list[str]) -> None:
    """Print what happened (shown with ``pytest -s``, and when the test fails)."""
    py_ok = sum(result is None for result in py_results)
    print("flood:", summary)
    print(f"python: {py_ok} pong, {len(py_results) - py_ok} pang; erl: {Counter(erl_results)}")
    print(len(lines), "warning lines:", *lines, sep="\n")


async def test_new_peers_connect_during_a_flood(
    make_node: NodeFactory, epmd_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """During 2,000 bad/silent connections, new Python nodes and erl connect and ping."""
    target = await make_node("target", warning_interval=60.0)
    erl = await ErlPeer.start("erlflood@127.0.0.1", COOKIE, env={"ERL_EPMD_PORT": str(epmd_port)})
    py_results: list[Any] = []
    erl_results: list[Any] = []
    stop = asyncio.Event()
    flood = await start_flood(target.port)
    assert flood.stdout is not None
    try:
        with caplog.at_level(logging.WARNING, logger="nodemesh"):
            async with asyncio.timeout(60), asyncio.TaskGroup() as group:
                group.create_task(python_pings(target.name, epmd_port, py_results, stop))
                group.create_task(erl_pings(erl, target.name, erl_results, stop))
                summary = json.loads(await flood.stdout.readline())
                stop.set()
            await target.aclose()  # writes the summaries of what was held back
    finally:
        if flood.returncode is None:
            flood.kill()
        await flood.wait()
        await erl.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    report(summary, py_results, erl_results, warnings)
    assert summary.get("opened", 0) + summary.get("connect_failed", 0) == CONNECTIONS
    assert len(py_results) >= 2 and len(erl_results) >= 2
    assert py_results == [None] * len(py_results)
    assert erl_results == ["pong"] * len(erl_results)
    assert len(warnings) <= 10, warnings  # at most 2 for each of 5 causes
    assert any("more in the last" in line for line in warnings), warnings
    statistics = target._transport.gatekeeper.statistics()  # type: ignore[union-attr]
    assert statistics.peak <= target.config.max_pending_handshakes
