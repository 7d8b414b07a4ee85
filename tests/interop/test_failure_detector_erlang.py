"""The fast failure detector in a mixed cluster with real `erl`: Erlang peers still get
their ticks, are held to Erlang's rule (not the sub-second one), and messages flow."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import NodeDown
from support.erlang import ErlPeer

pytestmark = pytest.mark.interop

TICKTIME = 4  # net_ticktime on both sides: Erlang ticks every second, down after 4 s


async def first_nodedown(events: AsyncIterator[object]) -> NodeDown:
    """The next NodeDown event of ``events``."""
    async for event in events:
        if isinstance(event, NodeDown):
            return event
    raise AssertionError("the event stream ended")


async def test_erlang_peer_keeps_erlangs_rule_with_the_fast_profile(
    make_node: NodeFactory, epmd_port: int
) -> None:
    """A fast-profile node and erl (net_ticktime 4) stay connected past the ticktime
    both ways, the erl peer is not held to the fast verdict, and freezing it gives
    nodedown by Erlang's rule (after more than a second, within the ticktime)."""
    erl = await ErlPeer.start(
        "erlfd@127.0.0.1",
        COOKIE,
        env={"ERL_EPMD_PORT": str(epmd_port)},
        extra_args=("-kernel", "net_ticktime", str(TICKTIME)),
    )
    try:
        py = await make_node("pyfd", failure_detector="fast", net_ticktime=float(TICKTIME))
        events = py.events()
        assert await py.connect(erl.name)
        # Longer than the ticktime: either side dropping the other would show here.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(first_nodedown(events), TICKTIME * 1.5)
        assert await erl.eval(f"lists:member('{py.name}', nodes(hidden))") == "true"
        assert await erl.eval(f"net_adm:ping('{py.name}')") == "pong"
        assert py.statistics().fast_watched_peers == 0  # ticks 1 s apart: Erlang's rule
        loop = asyncio.get_running_loop()
        erl.proc.send_signal(signal.SIGSTOP)
        frozen = loop.time()
        event = await asyncio.wait_for(first_nodedown(events), TICKTIME * 2)
        assert event.node == erl.name and event.reason == "net_tick_timeout"
        assert 1.0 < loop.time() - frozen <= TICKTIME + 1.0
    finally:
        erl.proc.send_signal(signal.SIGCONT)
        await erl.stop()


async def test_an_erlang_peer_tuned_to_tick_fast_is_watched_fast(
    make_node: NodeFactory, epmd_port: int
) -> None:
    """erl with net_tickintensity 20 (a tick every 0.1 s at net_ticktime 2) earns the
    fast verdict: frozen, it is declared down within a second."""
    erl = await ErlPeer.start(
        "erlfast@127.0.0.1",
        COOKIE,
        env={"ERL_EPMD_PORT": str(epmd_port)},
        extra_args=("-kernel", "net_ticktime", "2", "-kernel", "net_tickintensity", "20"),
    )
    try:
        py = await make_node("pyfast", failure_detector="fast", net_ticktime=2.0)
        events = py.events()
        assert await py.connect(erl.name)
        async with asyncio.timeout(10):
            while py.statistics().fast_watched_peers < 1:  # noqa: ASYNC110 - polled
                await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        erl.proc.send_signal(signal.SIGSTOP)
        frozen = loop.time()
        event = await asyncio.wait_for(first_nodedown(events), 5)
        assert event.node == erl.name
        assert loop.time() - frozen < 1.0
    finally:
        erl.proc.send_signal(signal.SIGCONT)
        await erl.stop()
