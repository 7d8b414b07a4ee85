"""Discovery once, without connecting: polling strategies, push strategies and gossip."""

from __future__ import annotations

import asyncio
from collections.abc import Set
from contextlib import AsyncExitStack
from dataclasses import dataclass

from cluster.helpers import FAST
from conftest import NodeFactory
from nodemesh.cluster import Cluster, PollingStrategy, Strategy, StrategyContext, Topology
from nodemesh.doctor.discovery import DiscoveryResult, default_wait, discover_once
from support.gossip_node import free_udp_port
from support.net import free_port, wait_for


@dataclass(frozen=True)
class NoOptions:
    polling_interval: int = 5000


class Broken(PollingStrategy):
    name = "broken"
    Options = NoOptions

    async def discover(self) -> Set[str]:
        raise RuntimeError("a bug in a plug-in")


class Stuck(PollingStrategy):
    name = "stuck"
    Options = NoOptions

    async def discover(self) -> Set[str]:
        await asyncio.Event().wait()
        return set()


class Announcer(Strategy):
    """A push strategy that learns of two nodes, then keeps running."""

    name = "announcer"
    Options = NoOptions

    async def run(self, ctx: StrategyContext) -> None:
        await ctx.connect_nodes({"a@10.0.0.1", "b@10.0.0.2", ctx.node_name})
        await asyncio.Event().wait()


async def once(
    topology: Topology, *, wait: float | None = None, timeout: float = 10.0
) -> DiscoveryResult:
    return await discover_once(
        topology, node_name="me@127.0.0.1", epmd_port=free_port(), wait=wait, timeout=timeout
    )


async def test_polling_strategy_answers_once() -> None:
    """The epmd strategy's list comes back as is."""
    topology = Topology.create("seeds", "epmd", {"hosts": ["a@10.0.0.1", "b@10.0.0.2"]})
    result = await discover_once(topology, node_name="me@h.example", epmd_port=4369)
    assert result.nodes == {"a@10.0.0.1", "b@10.0.0.2"} and result.error is None
    assert result.listened is None


async def test_failed_lookup_is_an_error_not_an_exception() -> None:
    """local_epmd with no EPMD on the port: the DiscoveryError's text, no nodes."""
    result = await once(Topology.create("here", "local_epmd"))
    assert result.nodes == frozenset()
    assert "cannot list the local EPMD" in result.error


async def test_a_strategy_bug_is_one_line() -> None:
    """A plug-in raising anything else is reported with its type, not a traceback."""
    result = await once(Topology.create("x", Broken))
    assert result.error == "RuntimeError: a bug in a plug-in"


async def test_a_hanging_lookup_times_out() -> None:
    """A lookup that never answers ends after the timeout."""
    result = await once(Topology.create("x", Stuck), timeout=0.2)
    assert result.error == "no answer within 0.2 s"


async def test_push_strategy_is_recorded_not_connected() -> None:
    """A push strategy's connect_nodes is recorded (self excluded) for the window."""
    result = await once(Topology.create("x", Announcer), wait=0.2)
    assert result.nodes == {"a@10.0.0.1", "b@10.0.0.2"}
    assert result.listened == 0.2


async def test_gossip_is_heard_without_being_answered(make_node: NodeFactory) -> None:
    """Gossiping nodes are heard, and none tries to connect to the silent listener."""
    port = free_udp_port()
    config = {"port": port, "multicast_if": "127.0.0.1", "heartbeat_interval_max": 200}
    spec = {"local": {"strategy": "gossip", "config": config}}
    nodes = [await make_node(f"g{i}") for i in range(2)]
    async with AsyncExitStack() as stack:
        clusters = [await stack.enter_async_context(Cluster(n, spec, config=FAST)) for n in nodes]
        await wait_for(lambda: nodes[0].is_connected(nodes[1].name), 10, "the pair connected")
        (topology,) = clusters[0].topologies
        result = await discover_once(
            topology, node_name="probe@127.0.0.1", epmd_port=4369, wait=1.0
        )
        stats = [c.statistics().topologies["local"] for c in clusters]
    assert result.nodes == {n.name for n in nodes}
    assert all(not s.connect_errors for s in stats), "a node tried to reach the listener"
    assert default_wait(topology) == 0.2 + 1.0
