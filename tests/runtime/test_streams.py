"""Event streams: one class behind node.events() and cluster.events(), never silently
dropping an event."""

from __future__ import annotations

import asyncio
import logging

import pytest

from conftest import NodeFactory
from nodemesh.cluster import Cluster
from nodemesh.errors import ConfigError, StreamOverflowError
from nodemesh.runtime.events import NodeDown, NodeUp
from nodemesh.runtime.streams import Publisher, Stream


async def test_events_in_order_then_end_after_close() -> None:
    """Events come out in order; after close() the queued ones, then EOFError."""
    stream: Stream[int] = Stream()
    for i in range(3):
        stream.put_nowait(i)
    stream.close()
    stream.put_nowait(99)  # ended: ignored
    assert [e async for e in stream] == [0, 1, 2]
    with pytest.raises(EOFError):
        await stream.get(timeout=1)


async def test_get_times_out_with_timeout_error() -> None:
    """get(timeout) raises TimeoutError when nothing is published."""
    with pytest.raises(TimeoutError):
        await Stream[int]().get(timeout=0.01)


async def test_timed_gets_in_a_row_each_time_out_on_their_own_deadline() -> None:
    """A timed get that got its event leaves its timer behind; the next timed get still
    times out on its own deadline (the timer re-arms), and an event put after a
    timeout goes to the next reader, not to the one that gave up."""
    stream: Stream[int] = Stream()
    reader = asyncio.create_task(stream.get(timeout=5))
    await asyncio.sleep(0)
    stream.put_nowait(1)
    assert await reader == 1
    for _ in range(2):
        with pytest.raises(TimeoutError):
            await stream.get(timeout=0.01)
    stream.put_nowait(2)
    assert await stream.get(timeout=5) == 2
    assert stream.statistics().queued == 0


async def test_a_short_timeout_beside_a_long_one() -> None:
    """Two timed readers: the short one times out, the long one still gets the event
    put after that; untimed readers are never timed out."""
    stream: Stream[int] = Stream()
    long = asyncio.create_task(stream.get(timeout=30))
    untimed = asyncio.create_task(stream.get())
    with pytest.raises(TimeoutError):
        await stream.get(timeout=0.01)
    assert not long.done() and not untimed.done()
    stream.put_nowait(1)
    stream.put_nowait(2)
    assert sorted(await asyncio.gather(long, untimed)) == [1, 2]


async def test_two_readers_two_events_each_get_one() -> None:
    """Two concurrent get() calls and two events: each reader gets one."""
    stream: Stream[int] = Stream()
    readers = [asyncio.create_task(stream.get(timeout=5)) for _ in range(2)]
    await asyncio.sleep(0)
    stream.put_nowait(1)
    stream.put_nowait(2)
    assert sorted(await asyncio.gather(*readers)) == [1, 2]


async def test_waiting_readers_are_woken_then_ended() -> None:
    """A reader parked in ``async for`` gets each event as it is put and stops at close;
    one parked in get() without a timeout gets EOFError at close; an overflow reaches
    a parked reader as StreamOverflowError."""
    stream: Stream[int] = Stream()
    iterating = asyncio.create_task(_collect(stream))
    await asyncio.sleep(0)
    for i in range(3):
        stream.put_nowait(i)
        await asyncio.sleep(0)
    stream.close()
    assert await iterating == [0, 1, 2]
    closed: Stream[int] = Stream()
    getting = asyncio.create_task(closed.get())
    await asyncio.sleep(0)
    closed.close()
    with pytest.raises(EOFError):
        await getting
    bounded: Stream[int] = Stream(max_queued=1)
    overflowing = asyncio.create_task(_collect(bounded))
    await asyncio.sleep(0)
    bounded.put_nowait(1)
    bounded.put_nowait(2)  # before the reader ran: full, so the stream ends
    with pytest.raises(StreamOverflowError):
        await overflowing


async def _collect(stream: Stream[int]) -> list[int]:
    return [event async for event in stream]


async def test_overflow_ends_the_stream_loudly(caplog: pytest.LogCaptureFixture) -> None:
    """At its bound a stream ends: the queued events, then StreamOverflowError (also from
    iteration), one warning, and the publisher forgets it."""
    publisher: Publisher[int] = Publisher("test stream")
    stream = publisher.subscribe(max_queued=3)
    with caplog.at_level(logging.WARNING, logger="nodemesh.node"):
        for i in range(10):
            publisher.publish(i)
    assert [r.getMessage() for r in caplog.records] == [
        "test stream reached max_queued=3: its reader fell behind; it ends here"
    ]
    stats = stream.statistics()
    assert (stats.queued, stats.published, stats.overflowed) == (3, 3, True)
    assert publisher._streams == set()
    received: list[int] = []

    async def read_all() -> None:
        async for event in stream:
            received.append(event)

    with pytest.raises(StreamOverflowError, match="subscribe again"):
        await read_all()
    assert received == [0, 1, 2]


async def test_bad_bound_is_a_config_error() -> None:
    """A stream bound that is not a positive integer raises ConfigError."""
    with pytest.raises(ConfigError):
        Stream[int](max_queued=0)


async def test_node_events_async_with_releases_the_subscription(make_node: NodeFactory) -> None:
    """Leaving ``async with node.events()`` ends the subscription: nothing more queues."""
    a, b = await make_node("a"), await make_node("b")
    async with a.events() as events:
        assert await a.connect(b.name)
        assert await events.get(5) == NodeUp(b.name)
    later = a.events()
    assert await a.disconnect(b.name)
    assert isinstance(await later.get(5), NodeDown)
    assert events.statistics().published == 1
    with pytest.raises(EOFError):
        await events.get(1)


async def test_node_events_bound_from_config(make_node: NodeFactory) -> None:
    """NodeConfig(max_queued_events=1): a reader that fell behind reads the event queued,
    then StreamOverflowError; max_queued=0 asks for an unbounded stream."""
    a, b = await make_node("a", max_queued_events=1), await make_node("b")
    bounded, unbounded = a.events(), a.events(max_queued=0)
    assert await a.connect(b.name)
    assert await a.disconnect(b.name)
    assert await bounded.get(5) == NodeUp(b.name)
    with pytest.raises(StreamOverflowError):
        await bounded.get(5)
    assert [await unbounded.get(5) for _ in range(2)] == [
        NodeUp(b.name),
        NodeDown(b.name, "disconnect"),
    ]


async def test_cluster_events_are_the_same_stream(make_node: NodeFactory) -> None:
    """cluster.events() is a Stream too, and ``async with`` releases it."""
    a = await make_node("a")
    async with Cluster(a, {}) as cluster, cluster.events() as events:
        assert isinstance(events, Stream)
        assert cluster._publisher._streams == {events}
    assert cluster._publisher._streams == set()
