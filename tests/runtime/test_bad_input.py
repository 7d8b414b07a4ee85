"""Hostile and broken peers: the node logs one line, drops that connection, keeps the rest."""

from __future__ import annotations

import asyncio
import logging

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import Atom, NodeDownError, Pid
from nodemesh.dist import handshake
from nodemesh.dist.flags import default_flags
from nodemesh.runtime.events import NodeDown
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


async def test_silent_client_is_cut_off_after_the_first_message_timeout(
    make_node: NodeFactory,
) -> None:
    """A client that connects and says nothing is closed after
    handshake_first_message_timeout, long before connect_timeout."""
    b = await make_node("b", handshake_first_message_timeout=0.3, connect_timeout=60.0)
    reader, writer = await raw_connect(b)
    await assert_closed_by_node(reader)
    writer.close()
    assert pending(b) == 0


def pending(node: Node) -> int:
    """Handshakes pending on the node's accepted sockets."""
    assert node._transport is not None
    return node._transport.gatekeeper.pending


async def is_open(reader: asyncio.StreamReader, timeout: float = 0.05) -> bool:
    """True if the node has not closed this socket: no EOF among what it sent within
    ``timeout`` seconds."""
    try:
        while await asyncio.wait_for(reader.read(65536), timeout):
            pass
    except TimeoutError:
        return True
    return False


async def test_a_full_table_evicts_the_oldest_not_the_newcomer(make_node: NodeFactory) -> None:
    """Past max_pending_handshakes the oldest pending socket is closed, not the newcomer,
    and a real peer connects while the table is full of silent sockets."""
    b = await make_node("b", max_pending_handshakes=3)
    idle = [await raw_connect(b) for _ in range(3)]
    await wait_for(lambda: pending(b) == 3, what="three pending handshakes")
    newcomer = await raw_connect(b)
    await assert_closed_by_node(idle[0][0])
    assert [await is_open(reader) for reader, _ in (*idle[1:], newcomer)] == [True] * 3
    assert pending(b) == 3
    a = Node("a@127.0.0.1", COOKIE, config=b.config)
    async with a:
        assert await a.ping(b.name)
    for _, writer in (*idle, newcomer):
        writer.close()


async def test_pending_are_counted_at_accept(make_node: NodeFactory) -> None:
    """A burst of connections accepted in one go never holds more than
    max_pending_handshakes open (they are counted at accept, not later)."""
    b = await make_node(
        "b",
        max_pending_handshakes=8,
        max_pending_handshakes_per_address=8,
        handshake_first_message_timeout=60.0,
    )
    burst = await asyncio.gather(*(raw_connect(b) for _ in range(60)))
    assert b._transport is not None
    gatekeeper = b._transport.gatekeeper
    await wait_for(lambda: gatekeeper.statistics().admitted == 60, what="60 accepted")
    closed = await asyncio.gather(*(closed_within(reader, 1.0) for reader, _ in burst))
    assert closed.count(True) == 52
    statistics = gatekeeper.statistics()
    assert (statistics.peak, statistics.pending, statistics.evicted) == (8, 8, 52)
    for _, writer in burst:
        writer.close()


async def closed_within(reader: asyncio.StreamReader, timeout: float) -> bool:
    """True if the node closes this socket within ``timeout`` seconds."""
    return not await is_open(reader, timeout)


async def test_one_address_cannot_take_every_slot(make_node: NodeFactory) -> None:
    """Past max_pending_handshakes_per_address, that address loses its oldest socket;
    sockets from other addresses keep theirs."""
    b = await make_node("b", max_pending_handshakes=10, max_pending_handshakes_per_address=2)
    other = await raw_connect(b)
    greedy = [await connect_from(b, "127.0.0.2") for _ in range(3)]
    await assert_closed_by_node(greedy[0][0])
    assert [await is_open(r) for r, _ in (other, *greedy[1:])] == [True] * 3
    assert pending(b) == 3
    for _, writer in (other, *greedy):
        writer.close()


async def connect_from(
    node: Node, source: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw socket to ``node`` from the loopback address ``source``."""
    return await asyncio.open_connection("127.0.0.1", node.port, local_addr=(source, 0))


async def test_a_talking_handshake_outlives_older_silent_ones(make_node: NodeFactory) -> None:
    """A peer that sent its name goes to the back of the eviction queue: newer silent
    sockets push out the older silent ones first."""
    b = await make_node("b", max_pending_handshakes=3)
    silent = await raw_connect(b)
    talking_reader, talking = await raw_connect(b)
    await wait_for(lambda: pending(b) == 2, what="two pending handshakes")
    hs = handshake.Initiator("slow@127.0.0.1", COOKIE, default_flags(), 7, expected_peer=b.name)
    talking.write(hs.data_to_send())
    assert await asyncio.wait_for(talking_reader.read(3), 5)  # the status: it was heard
    newer = [await raw_connect(b) for _ in range(2)]
    await assert_closed_by_node(silent[0])
    assert await is_open(talking_reader)
    for _, writer in (silent, (talking_reader, talking), *newer):
        writer.close()


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


async def test_a_burst_of_bad_connections_logs_a_handful_of_lines(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """200 garbage connections give one warning, then one line counting the rest;
    each one is still logged at debug."""
    b = await make_node("b", warning_interval=60.0)
    with caplog.at_level(logging.DEBUG, logger="nodemesh"):
        for _ in range(200):
            reader, writer = await raw_connect(b)
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
            await assert_closed_by_node(reader)
            writer.close()
        await wait_for(lambda: pending(b) == 0, what="the last handshake to end")
        await b.aclose()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "failed" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("handshake with ") and "18245 bytes" in warnings[0]
    assert warnings[1] == (
        "handshakes failed: RemoteProtocolError: 199 more in the last 60 s (not logged one by one)"
    )
    assert len(debug) >= 199


async def test_a_silent_peer_takes_sends_until_it_is_declared_down(
    make_node: NodeFactory,
) -> None:
    """As docs/node.md says: sends to a peer that stopped answering succeed (queued, not
    delivered) until net_tick_timeout; then sends raise NodeDownError, the next ones at
    once with the same reason."""
    b = await make_node("b", net_ticktime=0.4, connect_retry_delay=60.0)
    _reader, writer = await authenticated(b)  # then it says nothing more: a partition
    await wait_for(lambda: "evil@127.0.0.1" in b.nodes(), what="evil to be connected")
    events = b.events()
    evil = Pid(Atom("evil@127.0.0.1"), 1, 0, 7)
    for index in range(10):
        await b.send(evil, index)  # no error: the frames sit in socket buffers
    down = await events.get(timeout=5)
    assert down == NodeDown("evil@127.0.0.1", "net_tick_timeout")
    with pytest.raises(NodeDownError, match="does not know a node named 'evil'"):
        await b.send(evil, "after")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(NodeDownError, match=r"'evil' \(failed"):
        await b.send(evil, "again")
    assert loop.time() - started < 0.5
    writer.close()
