"""Bounded mailboxes: a full mailbox pauses the connection (TCP pushes back on the
sender) or the local sender, and no message is ever dropped or reordered."""

from __future__ import annotations

import asyncio

import pytest

from conftest import NodeFactory
from nodemesh.runtime.events import EventStream, NodeDown
from support.net import wait_for

PAYLOAD = b"x" * 2000


async def test_fast_python_sender_is_paused_by_a_bounded_mailbox(make_node: NodeFactory) -> None:
    """A fast sender against a slow reader with max_queued=100: the queue never exceeds
    100, the pause reaches the sender's socket (its writes block), and all 20,000
    messages arrive in order."""
    a, b = await make_node("a"), await make_node("b")
    inbox = b.register("inbox", max_queued=100)
    count = 20_000

    async def send_all() -> None:
        for i in range(count):
            await a.send(("inbox", b.name), (i, PAYLOAD))

    sender = asyncio.create_task(send_all())
    await wait_for(lambda: b.statistics().paused_connections == 1, what="b pauses reading")
    await wait_for(
        lambda: a.statistics().write_paused_connections == 1, what="TCP pushes back on a"
    )
    assert not sender.done()
    received = [(await inbox.receive(timeout=10))[0] for _ in range(count)]
    await sender
    assert received == list(range(count))
    stats = inbox.statistics()
    assert stats.peak_queued == 100 and stats.max_queued == 100
    assert b.statistics().paused_connections == 0


async def test_local_send_waits_for_room(make_node: NodeFactory) -> None:
    """await node.send to a full local mailbox waits until it drained to half its bound;
    send_nowait still queues (beyond the bound)."""
    node = await make_node("a")
    box = node.mailbox(max_queued=4)
    for i in range(4):
        await node.send(box.pid, i)
    blocked = asyncio.create_task(node.send(box.pid, 4))
    await asyncio.sleep(0)
    assert not blocked.done()
    assert box.statistics().senders_waiting == 1
    assert [box.receive_nowait() for _ in range(2)] == [0, 1]  # drained to half
    await asyncio.wait_for(blocked, 5)
    node.send_nowait(box.pid, 5)
    node.send_nowait(box.pid, 6)
    assert [box.receive_nowait() for _ in range(5)] == [2, 3, 4, 5, 6]


async def test_closing_a_full_mailbox_releases_the_connection(make_node: NodeFactory) -> None:
    """Messages queued behind a full mailbox that nobody reads are delivered once it
    closes (its own are dropped, as for a dead process)."""
    a, b = await make_node("a"), await make_node("b")
    stuck = b.register("stuck", max_queued=5)
    other = b.register("other")
    for i in range(10):
        await a.send(("stuck", b.name), i)
    await a.send(("other", b.name), b"after")
    await wait_for(lambda: b.statistics().paused_connections == 1)
    assert len(stuck) == 5 and len(other) == 0
    stuck.close()
    assert await other.receive(timeout=5) == b"after"
    assert b.statistics().paused_connections == 0


async def test_paused_connection_is_not_declared_down(make_node: NodeFactory) -> None:
    """While reading is paused for backpressure the peer is not silent: no nodedown
    after more than net_ticktime, and every message arrives afterwards."""
    a = await make_node("a", net_ticktime=1.0)
    b = await make_node("b", net_ticktime=1.0)
    inbox = b.register("inbox", max_queued=2)
    events = b.events()
    for i in range(5):
        await a.send(("inbox", b.name), i)
    await wait_for(lambda: b.statistics().paused_connections == 1)
    with pytest.raises(TimeoutError):  # about two and a half tick timeouts: no nodedown
        await _nodedown(events, within=2.5)
    assert b.is_connected(a.name)
    assert [await inbox.receive(timeout=5) for _ in range(5)] == list(range(5))


async def _nodedown(events: EventStream, within: float) -> None:
    async with asyncio.timeout(within):
        async for event in events:
            assert not isinstance(event, NodeDown), event


async def test_node_statistics_count_queues(make_node: NodeFactory) -> None:
    """Node.statistics() reports mailboxes, total and largest queue, connections."""
    a, b = await make_node("a"), await make_node("b")
    first, second = a.mailbox(), a.mailbox()
    for i in range(3):
        first.deliver(i)
    second.deliver("x")
    assert await a.connect(b.name)
    stats = a.statistics()
    assert (stats.queued_messages, stats.largest_queue) == (4, 3)
    assert stats.mailboxes >= 2  # and the node's own
    assert (stats.connections, stats.pending_handshakes, stats.paused_connections) == (1, 0, 0)
    assert stats.write_paused_connections == 0
