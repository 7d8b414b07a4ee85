"""Mailbox semantics: FIFO receivers, no lost wake-ups, closing is not timing out."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from conftest import NodeFactory
from nodemesh import Atom, MailboxClosedError, NodeConfig, NodeDownError, ReceiveTimeoutError
from nodemesh.errors import ConfigError
from support.net import wait_for

DOWN = Atom("DOWN")


async def test_two_receivers_two_messages_each_get_one(make_node: NodeFactory) -> None:
    """Two concurrent receive() calls and two messages: both receivers get one, none
    times out and nothing stays queued (the lost wake-up of issue 7)."""
    node = await make_node("a")
    box = node.mailbox()
    first = asyncio.create_task(box.receive(timeout=5))
    second = asyncio.create_task(box.receive(timeout=5))
    await asyncio.sleep(0)  # both are waiting now
    await node.send(box.pid, 1)
    await node.send(box.pid, 2)
    assert sorted(await asyncio.gather(first, second)) == [1, 2]
    assert len(box) == 0


async def test_waiting_receivers_are_served_in_order(make_node: NodeFactory) -> None:
    """Receivers get messages in the order they started waiting."""
    node = await make_node("a")
    box = node.mailbox()
    receivers = []
    for _ in range(5):
        receivers.append(asyncio.create_task(box.receive(timeout=5)))
        await asyncio.sleep(0)
    assert box.statistics().receivers_waiting == 5
    for i in range(5):
        box.deliver(i)
    assert [await r for r in receivers] == [0, 1, 2, 3, 4]


async def test_message_handed_to_a_cancelled_receiver_is_kept(make_node: NodeFactory) -> None:
    """A receiver cancelled after a message was handed to it puts it back, first."""
    node = await make_node("a")
    box = node.mailbox()
    receiver = asyncio.create_task(box.receive())
    await asyncio.sleep(0)
    box.deliver("first")
    box.deliver("second")
    receiver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiver
    assert [box.receive_nowait(), box.receive_nowait()] == ["first", "second"]


async def test_timed_out_receivers_leave_no_waiters(make_node: NodeFactory) -> None:
    """Many receive() calls that time out leave nothing behind."""
    node = await make_node("a")
    box = node.mailbox()
    for _ in range(50):
        with pytest.raises(ReceiveTimeoutError):
            await box.receive(timeout=0)
    assert box.statistics().receivers_waiting == 0
    box.deliver("late")
    assert await box.receive(timeout=1) == "late"


async def test_close_raises_mailbox_closed_not_timeout(make_node: NodeFactory) -> None:
    """Closing wakes waiting receivers with MailboxClosedError (not a timeout), and
    every later receive raises it too."""
    node = await make_node("a")
    box = node.mailbox()
    waiting = asyncio.create_task(box.receive())
    await asyncio.sleep(0)
    box.close()
    with pytest.raises(MailboxClosedError):
        await waiting
    with pytest.raises(MailboxClosedError) as info:
        await box.receive(timeout=5)
    assert not isinstance(info.value, TimeoutError)
    with pytest.raises(MailboxClosedError):
        box.receive_nowait()


async def test_queued_messages_are_read_after_close(make_node: NodeFactory) -> None:
    """Messages queued before close are still received; iteration then ends."""
    node = await make_node("a")
    box = node.mailbox()
    box.deliver(1)
    box.deliver(2)
    box.close()
    assert not box.deliver(3)  # a closed mailbox is a dead process: ignored
    assert [m async for m in box] == [1, 2]


async def test_async_with_closes_and_signals_the_reason(make_node: NodeFactory) -> None:
    """A mailbox used with ``async with`` closes on exit; a monitor sees ``normal``, or
    the exception that escaped."""
    node = await make_node("a")
    watcher = node.mailbox()
    async with node.mailbox() as box:
        ref = watcher.monitor(box.pid)
    assert box.closed
    assert await watcher.receive(timeout=5) == (DOWN, ref, Atom("process"), box.pid, "normal")
    crashing = node.mailbox()
    watcher.monitor(crashing.pid)
    with pytest.raises(KeyError):
        async with crashing:
            raise KeyError("boom")
    reason = (await watcher.receive(timeout=5))[4]
    assert reason == (Atom("python_exception"), "KeyError", "'boom'")


async def test_rpc_waiting_when_node_stops_raises_node_down(make_node: NodeFactory) -> None:
    """An rpc waiting for its answer when our node stops raises NodeDownError, not a
    timeout 'within None s'."""
    a = await make_node("a")
    b = await make_node("b")
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> str:
        started.set()
        await release.wait()
        return "done"

    b.expose("slow", "call", slow)
    call = asyncio.create_task(a.rpc(b.name, "slow", "call"))
    await asyncio.wait_for(started.wait(), 5)
    await a.aclose()
    with pytest.raises(NodeDownError, match="stopped while waiting"):
        await call
    release.set()


async def test_bad_bound_is_a_config_error(make_node: NodeFactory) -> None:
    """A negative bound raises ConfigError, per mailbox and in
    NodeConfig."""
    node = await make_node("a")
    with pytest.raises(ConfigError):
        node.mailbox(max_queued=-1)
    for field in ("max_queued_messages", "max_queued_events"):
        with pytest.raises(ConfigError, match=field):
            NodeConfig(**{field: -1})
    assert NodeConfig().max_queued_messages is None  # Erlang's default: unbounded


async def test_many_receivers_with_timeouts_lose_nothing(make_node: NodeFactory) -> None:
    """Twenty receivers timing out and retrying while 3,000 messages arrive: every
    message is received exactly once and nothing stays queued."""
    node = await make_node("a")
    box = node.mailbox()
    received: list[int] = []
    done = asyncio.Event()

    async def receiver() -> None:
        while not done.is_set():
            with contextlib.suppress(ReceiveTimeoutError):
                received.append(await box.receive(timeout=0.001))

    async with asyncio.TaskGroup() as group:
        for _ in range(20):
            group.create_task(receiver())
        for i in range(3000):
            box.deliver(i)
            if i % 7 == 0:
                await asyncio.sleep(0)
        await wait_for(lambda: len(received) == 3000)
        done.set()
    assert sorted(received) == list(range(3000))
    assert len(box) == 0
