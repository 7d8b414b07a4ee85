"""Epmd and LocalEpmd strategies against a real `epmd` and real `erl` nodes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cluster.helpers import FAST, next_event
from conftest import COOKIE, NodeFactory
from nodemesh.cluster import (
    Cluster,
    NodeJoined,
    NodeLeft,
    Strategy,
    StrategyContext,
    StrategyCrashed,
    Topology,
)
from support.erlang import ErlPeer, running_epmd
from support.net import wait_for

pytestmark = pytest.mark.interop


@pytest.fixture
def epmd_port() -> Iterator[int]:
    """A real epmd on a private port (overrides the embedded-EPMD fixture)."""
    with running_epmd() as port:
        yield port


async def start_erl(name: str, epmd_port: int) -> ErlPeer:
    return await ErlPeer.start(name, COOKIE, env={"ERL_EPMD_PORT": str(epmd_port)})


async def test_local_epmd_finds_erlang_nodes(make_node: NodeFactory, epmd_port: int) -> None:
    """LocalEpmd lists a real epmd and connects every Erlang node on the host, including
    one that starts later; Erlang sees the Python node in nodes(hidden)."""
    e1, e2 = await asyncio.gather(
        start_erl("e1@127.0.0.1", epmd_port), start_erl("e2@127.0.0.1", epmd_port)
    )
    try:
        py = await make_node("py")
        topology = Topology.create("box", "local_epmd", {"polling_interval": 200})
        async with Cluster(py, [topology], config=FAST) as cluster:
            events = cluster.events()
            await wait_for(lambda: set(py.nodes()) == {e1.name, e2.name}, timeout=15)
            assert await e1.eval("lists:member('py@127.0.0.1', nodes(hidden))") == "true"
            e3 = await start_erl("e3@127.0.0.1", epmd_port)
            try:
                joined = await next_event(
                    events, lambda e: isinstance(e, NodeJoined) and e.node == e3.name, 15
                )
                assert joined == NodeJoined(e3.name, "box", "discovered")
            finally:
                await e3.stop()
    finally:
        await e1.stop()
        await e2.stop()


async def test_epmd_strategy_with_erlang_heals_and_survives_a_crash(
    make_node: NodeFactory, epmd_port: int
) -> None:
    """Epmd connects a listed Erlang node that starts later, reconnects after Erlang calls
    disconnect_node, and keeps working while another topology's strategy keeps crashing."""

    class Crashy(Strategy):
        name = "crashy"

        @dataclass(frozen=True, slots=True)
        class Options:
            pass

        async def run(self, ctx: StrategyContext) -> None:
            raise OSError("no network today")

    py = await make_node("py")
    target = "late@127.0.0.1"
    topologies = [
        Topology.create("static", "epmd", {"hosts": [target]}),
        Topology.create("broken", Crashy),
    ]
    async with Cluster(py, topologies, config=FAST) as cluster:
        events = cluster.events()
        await next_event(events, lambda e: isinstance(e, StrategyCrashed))
        late = await start_erl(target, epmd_port)
        try:
            await next_event(events, lambda e: isinstance(e, NodeJoined), 15)
            assert await late.eval("erlang:disconnect_node('py@127.0.0.1')") == "true"
            left = await next_event(events, lambda e: isinstance(e, NodeLeft), 15)
            assert left.node == target  # type: ignore[union-attr]
            back = await next_event(events, lambda e: isinstance(e, NodeJoined), 15)
            assert back == NodeJoined(target, "static", "reconnected")
            assert await late.eval("lists:member('py@127.0.0.1', nodes(hidden))") == "true"
        finally:
            await late.stop()
        stats = cluster.statistics().topologies
    assert stats["broken"].restarts >= 1 and stats["static"].reconnects == 1
