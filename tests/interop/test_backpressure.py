"""A real `erl` sending as fast as it can into a bounded Python mailbox: TCP pushes back
on Erlang (its sender is suspended on the busy distribution port), our memory stays flat
and every message arrives in order."""

from __future__ import annotations

import asyncio
import os

import pytest

from conftest import COOKIE, NodeFactory
from support.erlang import ErlPeer
from support.net import wait_for

pytestmark = pytest.mark.interop


def _rss() -> int:
    """This process's resident memory in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_fast_erlang_sender_against_a_bounded_mailbox(
    make_node: NodeFactory, erl: ErlPeer
) -> None:
    """30,000 messages of 2 kB (60 MB) from erl into max_queued=200: the queue never
    exceeds 200, the connection is paused, memory grows by far less than the data sent,
    and all messages arrive in order."""
    py = await make_node("py")
    inbox = py.register("inbox", max_queued=200)
    count = 30_000
    assert await py.ping(erl.name)
    baseline = peak = _rss()
    await erl.eval(
        'spawn(fun() -> Bin = binary:copy(<<"x">>, 2000), '
        f"[{{inbox, '{py.name}'}} ! {{I, Bin}} || I <- lists:seq(1, {count})] end), ok"
    )
    received, paused_seen = [], False
    for i in range(count):
        number, payload = await inbox.receive(timeout=20)
        received.append(number)
        if i % 50 == 0:  # a slow reader: it has other work (about 3 s in all)
            await asyncio.sleep(0.005)
            peak = max(peak, _rss())
            paused_seen = paused_seen or py.statistics().paused_connections == 1
    assert received == list(range(1, count + 1))
    assert len(payload) == 2000
    assert inbox.statistics().peak_queued == 200
    assert paused_seen
    assert peak - baseline < 20 * 1024 * 1024, f"memory grew by {(peak - baseline) >> 20} MiB"


async def test_erlang_peer_held_past_net_ticktime_stays_connected(
    make_node: NodeFactory, epmd_port: int
) -> None:
    """A connection paused for longer than net_ticktime (2 s on both sides) is declared
    down by neither side; once the mailbox is read, every message arrives in order."""
    py = await make_node("py", net_ticktime=2.0)
    erl = await ErlPeer.start(
        "erl2@127.0.0.1",
        COOKIE,
        env={"ERL_EPMD_PORT": str(epmd_port)},
        extra_args=("-kernel", "net_ticktime", "2"),
    )
    try:
        inbox = py.register("inbox", max_queued=10)
        assert await py.ping(erl.name)
        events = py.events()
        await erl.eval(
            f"spawn(fun() -> [{{inbox, '{py.name}'}} ! I || I <- lists:seq(1, 5000)] end), ok"
        )
        await wait_for(lambda: py.statistics().paused_connections == 1)
        with pytest.raises(TimeoutError):  # two ticktimes of silence from our side
            await events.get(timeout=5)
        assert await erl.eval(f"lists:member('{py.name}', nodes(hidden))") == "true"
        assert [await inbox.receive(timeout=10) for _ in range(5000)] == list(range(1, 5001))
    finally:
        await erl.stop()
