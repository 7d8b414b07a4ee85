"""The fast failure detector between real processes: a frozen Python peer is noticed
within a second, and healthy peers are not declared down with every core saturated."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import Node, NodeDown

SATURATE_SECONDS = 8.0
BUSY = """
import time
end = time.monotonic() + float(__import__("sys").argv[1])
while time.monotonic() < end:
    pass
"""


class Peers:
    """`nodemesh run` processes started by a test; killed (and thawed) after it."""

    def __init__(self, epmd_port: int) -> None:
        self.epmd_port = epmd_port
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, alive: str, detector: str = "fast") -> asyncio.subprocess.Process:
        env = {**os.environ, "ERL_EPMD_PORT": str(self.epmd_port)}
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "nodemesh.cli", "run", "--name", f"{alive}@127.0.0.1"),
            *("--cookie", COOKIE, "--failure-detector", detector),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        self.procs.append(proc)
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 20)
        assert line.decode().startswith("started"), line
        return proc


@pytest.fixture
async def peers(epmd_port: int) -> AsyncIterator[Peers]:
    started = Peers(epmd_port)
    yield started
    for proc in started.procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            await proc.wait()


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true, failing after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - statistics are polled, no event
            await asyncio.sleep(0.02)
    assert condition(), what


async def watched(node: Node, *names: str) -> None:
    """Connect to ``names`` and wait until the fast profile watches them all."""
    for name in names:
        assert await node.connect(name)
    await wait_for(
        lambda: node.statistics().fast_watched_peers == len(names), 10, "peers ticking fast"
    )


async def test_a_frozen_python_peer_is_declared_down_within_a_second(
    make_node: NodeFactory, peers: Peers
) -> None:
    """SIGSTOP of a fast-profile Python peer: nodedown (net_tick_timeout) within 1 s."""
    node = await make_node("watcher", failure_detector="fast")
    proc = await peers.start("frozen")
    events = node.events()
    await watched(node, "frozen@127.0.0.1")
    loop = asyncio.get_running_loop()
    proc.send_signal(signal.SIGSTOP)
    stopped = loop.time()
    async with asyncio.timeout(5):
        async for event in events:
            if isinstance(event, NodeDown) and event.node == "frozen@127.0.0.1":
                break
    assert loop.time() - stopped < 1.0
    assert event.reason == "net_tick_timeout"


async def test_no_false_positive_with_every_core_saturated(
    make_node: NodeFactory, peers: Peers
) -> None:
    """Two busy processes per core for a bounded time: no healthy peer is declared down
    on either side, and every peer is still watched fast afterwards."""
    node = await make_node("loaded", failure_detector="fast")
    names = [f"busy{i}@127.0.0.1" for i in (1, 2)]
    procs = [await peers.start(name.split("@")[0]) for name in names]
    events = node.events()
    await watched(node, *names)
    hogs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", BUSY, str(SATURATE_SECONDS))
        for _ in range(2 * (os.cpu_count() or 1))
    ]
    try:
        for hog in hogs:
            assert await asyncio.wait_for(hog.wait(), SATURATE_SECONDS + 30) == 0
    finally:
        for hog in hogs:
            if hog.returncode is None:
                hog.kill()
                await hog.wait()
    assert sorted(node.nodes()) == names
    assert node.statistics().fast_watched_peers == 2
    events.close()
    assert [event async for event in events if isinstance(event, NodeDown)] == []
    for proc in procs:  # the peers' own view: their stdout has nodeup only
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
        assert b"nodedown" not in out, out
