"""Hostile and broken peers: the node logs one line, drops that connection, keeps the rest."""

from __future__ import annotations

import asyncio
import logging

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import Atom, Pid
from nodemesh.dist import handshake
from nodemesh.dist.flags import default_flags
from nodemesh.runtime.node import Node
from support.net import wait_for


async def raw_connect(node: Node) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", node.port)


async def authenticated(
    node: Node, name: str = "evil@127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw socket that completed a real handshake with ``node``."""
    reader, writer = await raw_connect(node)
    hs = handshake.Initiator(name, COOKIE, default_flags(), 7, expected_peer=node.name)
    while True:
        writer.write(hs.data_to_send())
        event = hs.next_event()
        if isinstance(event, handshake.Established):
            writer.write(hs.data_to_send())
            return reader, writer
        if event is handshake.NEED_DATA:
            writer.write(hs.data_to_send())
            data = await asyncio.wait_for(reader.read(4096), 5)
            assert data, "node closed the connection during the handshake"
            hs.receive_data(data)


async def assert_closed_by_node(reader: asyncio.StreamReader) -> None:
    while await asyncio.wait_for(reader.read(65536), 5):
        pass


async def assert_still_working(a: Node, b: Node) -> None:
    box = b.register(f"check{id(a) % 1000}_{len(b.nodes())}")
    await a.send((str(box.name), b.name), "still here")
    assert await box.receive(timeout=5) == b"still here"
    box.close()


@pytest.fixture
async def pair(make_node: NodeFactory) -> tuple[Node, Node]:
    a = await make_node("a")
    b = await make_node("b")
    assert await a.connect(b.name)
    return a, b


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff" * 100,  # a length beyond any handshake message
        b"\x00\x05Nabcd",  # a send_name far too short
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # somebody's HTTP client
        b"\x00",  # a truncated length, then EOF
    ],
)
async def test_garbage_before_the_handshake(
    pair: tuple[Node, Node], garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage instead of a handshake closes that socket; other connections go on."""
    a, b = pair
    reader, writer = await raw_connect(b)
    writer.write(garbage)
    writer.write_eof()
    await assert_closed_by_node(reader)
    writer.close()
    await assert_still_working(a, b)
    assert b.nodes() == [a.name]


@pytest.mark.parametrize(
    ("frame", "complaint"),
    [
        (b"\x00\x00\x00\x05p\x83\x00\x00\x00", "tag"),  # not a term
        (b"\x00\x00\x00\x03q\x83\x6a", "header"),  # not a pass-through frame
        (b"\x00\x00\x00\x05p\x83\x68\x01\x61", "tuple"),  # control {63}: unknown op
        (b"\x00\x00\x00\x07p\x83\x68\x02\x61\x02\x6a", "elements"),  # SEND of arity 2
        (b"\x00\x00\x00\x02p\x83", "term"),  # truncated term
        (b"\x7f\xff\xff\xff", "limit"),  # a 2 GiB frame
    ],
)
async def test_garbage_after_the_handshake(
    pair: tuple[Node, Node], frame: bytes, complaint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A malformed frame from an authenticated peer drops it, with one log line."""
    a, b = pair
    reader, writer = await authenticated(b)
    await wait_for(lambda: "evil@127.0.0.1" in b.nodes(), what="evil to be connected")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nodemesh"):
        writer.write(frame)
        await assert_closed_by_node(reader)
        await wait_for(lambda: "evil@127.0.0.1" not in b.nodes(), what="evil to be dropped")
    writer.close()
    lines = [r.getMessage() for r in caplog.records if "evil" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("dropping connection to evil@127.0.0.1")
    await assert_still_working(a, b)


async def test_silent_client_is_cut_off_after_connect_timeout(make_node: NodeFactory) -> None:
    """A client that connects and says nothing is closed after connect_timeout."""
    b = await make_node("b", connect_timeout=0.3)
    reader, writer = await raw_connect(b)
    await assert_closed_by_node(reader)
    writer.close()
    assert b._connections.handshaking == set()


async def test_pending_handshakes_are_bounded(make_node: NodeFactory) -> None:
    """Past max_pending_handshakes, new sockets are closed at once; a real peer still
    connects once the others are gone."""
    b = await make_node("b", max_pending_handshakes=3, connect_timeout=1.0)
    idle = [await raw_connect(b) for _ in range(3)]
    await wait_for(lambda: len(b._connections.handshaking) == 3, what="three pending handshakes")
    reader, writer = await raw_connect(b)
    await assert_closed_by_node(reader)
    writer.close()
    for _, w in idle:
        w.close()
        await w.wait_closed()
    await wait_for(lambda: not b._connections.handshaking, what="the idle sockets to be closed")
    a = Node("a@127.0.0.1", COOKIE, config=b.config)
    async with a:
        assert await a.ping(b.name)


async def test_unknown_destinations_are_dropped_silently(pair: tuple[Node, Node]) -> None:
    """Messages to unregistered names or dead pids vanish, as in Erlang."""
    a, b = pair
    gone = b.mailbox()
    gone.close()
    await a.send(("nobody", b.name), 1)
    await a.send(gone.pid, 2)
    await assert_still_working(a, b)
    assert Atom("nobody") not in b._processes.names


async def test_aclose_is_bounded_when_a_peer_does_not_read(make_node: NodeFactory) -> None:
    """aclose() gives up flushing to a peer that never reads after close_timeout."""
    b = await make_node("b", close_timeout=0.5)
    _reader, writer = await authenticated(b)
    await wait_for(lambda: "evil@127.0.0.1" in b.nodes(), what="evil to be connected")
    evil = Pid(Atom("evil@127.0.0.1"), 1, 0, 7)
    blob = b"z" * (1024 * 1024)
    for _ in range(32):  # far more than the kernel's socket buffers hold
        b.send_nowait(evil, blob)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(b.aclose(), 5)
    assert loop.time() - started < 2
    writer.close()
