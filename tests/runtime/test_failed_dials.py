"""Sends to a node whose connect just failed fail at once (connect_retry_delay)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import NodeDownError
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.node import Node
from support.net import free_port


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port on 127.0.0.2 that completes TCP connects (the kernel's backlog) but never
    answers: a peer that hangs, as during a partition. Yields the port."""
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.2", port))
        sock.listen(16)
        yield port


async def test_sends_fail_fast_after_a_failed_connect(silent_listener: int) -> None:
    """After one send waited connect_timeout for a hung peer, the next sends raise
    NodeDownError at once with the same reason instead of each waiting again."""
    config = NodeConfig(
        use_epmd=False,
        port=silent_listener,
        listen_address="127.0.0.1",
        connect_timeout=1.0,
        connect_retry_delay=60.0,
    )
    loop = asyncio.get_running_loop()
    async with Node("a@127.0.0.1", COOKIE, config=config) as a:
        started = loop.time()
        with pytest.raises(NodeDownError, match=r"timed out after 1\.0 s"):
            await a.send(("inbox", "hung@127.0.0.2"), "first")
        assert loop.time() - started >= 1.0
        started = loop.time()
        for index in range(20):
            with pytest.raises(NodeDownError, match=r"timed out after 1.0 s \(failed"):
                await a.send(("inbox", "hung@127.0.0.2"), index)
        assert loop.time() - started < 1.0  # all 20 together: less than one connect
        assert not await a.connect("hung@127.0.0.2")


async def test_an_incoming_connection_clears_the_failure(make_node: NodeFactory) -> None:
    """A node that connects to us is up: a failure remembered for it is dropped."""
    a = await make_node("a", connect_retry_delay=60.0)
    assert not await a.connect("b@127.0.0.1")  # not started yet: EPMD does not know it
    b = await make_node("b")
    assert not await a.connect(b.name)  # remembered
    assert await b.connect(a.name)
    assert await b.disconnect(a.name)
    assert await a.connect(b.name)


async def test_zero_delay_always_tries_again(make_node: NodeFactory) -> None:
    """connect_retry_delay=0 makes every connect a new attempt, as before."""
    a = await make_node("a", connect_retry_delay=0)
    assert not await a.connect("b@127.0.0.1")
    b = await make_node("b")
    assert await a.connect(b.name)
