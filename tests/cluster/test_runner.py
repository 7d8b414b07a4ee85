"""The cluster runner with real nodes on loopback: connecting, healing, supervising."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Set
from dataclasses import dataclass

import pytest

from cluster.helpers import FAST, failing_lookup, next_event, next_events, scripted
from conftest import NodeFactory
from nodemesh.cluster import (
    Cluster,
    ConnectNode,
    DisconnectNode,
    DiscoveryFailed,
    Hooks,
    NodeJoined,
    NodeLeft,
    Strategy,
    StrategyContext,
    StrategyCrashed,
    Topology,
)
from support.net import wait_for


def epmd_topology(name: str, *hosts: str, **options: object) -> Topology:
    return Topology.create(name, "epmd", {"hosts": list(hosts), **options})


async def test_start_returns_before_the_first_round(make_node: NodeFactory) -> None:
    """start() returns at once even when the first discovery round would block."""
    gate = asyncio.Event()

    class Slow(scripted()):  # type: ignore[misc]
        async def discover(self) -> Set[str]:
            await gate.wait()
            return frozenset()

    a = await make_node("a")
    cluster = Cluster(a, [Topology.create("slow", Slow)], config=FAST)
    async with asyncio.timeout(1):
        await cluster.start()
    assert cluster.statistics().topologies["slow"].discovery_rounds == 0
    gate.set()
    await wait_for(lambda: cluster.statistics().topologies["slow"].discovery_rounds == 1)
    await cluster.aclose()


async def test_epmd_connects_a_static_list(make_node: NodeFactory) -> None:
    """Epmd connects every listed node and reports each join once."""
    a, b, c = await make_node("a"), await make_node("b"), await make_node("c")
    cluster = Cluster(a, [epmd_topology("static", b.name, c.name, a.name)], config=FAST)
    events = cluster.events()
    async with cluster:
        joined = {
            (await next_event(events, lambda e: isinstance(e, NodeJoined))).node for _ in range(2)
        }
        await wait_for(lambda: cluster.statistics().topologies["static"].connects_ok == 2)
        stats = cluster.statistics().topologies["static"]
    assert joined == {b.name, c.name}
    assert set(a.nodes()) == {b.name, c.name}
    assert stats.connects_ok == 2 and stats.nodes_joined == 2 and not stats.connect_errors
    assert stats.listed == {b.name, c.name}


async def test_epmd_retries_a_node_that_starts_later(make_node: NodeFactory) -> None:
    """A listed node that is not up yet is retried with backoff until it joins."""
    a = await make_node("a")
    late = "late@127.0.0.1"
    cluster = Cluster(a, [epmd_topology("static", late)], config=FAST)
    events = cluster.events()
    async with cluster:
        for _ in range(2):  # at least one retry fails before the node exists
            failed = await next_event(events, lambda e: isinstance(e, ConnectNode))
            assert failed == ConnectNode(late, "static", False, "unreachable", failed.duration)  # type: ignore[union-attr]
        await make_node("late")
        joined = await next_event(events, lambda e: isinstance(e, NodeJoined))
    assert joined == NodeJoined(late, "static", "discovered")
    stats = cluster.statistics().topologies["static"]
    assert stats.connect_errors["unreachable"] >= 2 and stats.connects_ok == 1


async def test_dropped_node_is_reconnected_while_listed(make_node: NodeFactory) -> None:
    """A node that drops the connection is reconnected because discovery still lists it."""
    a, b = await make_node("a"), await make_node("b")
    cluster = Cluster(a, [epmd_topology("static", b.name)], config=FAST)
    events = cluster.events()
    async with cluster:
        await next_event(events, lambda e: isinstance(e, NodeJoined))
        assert await b.disconnect(a.name)  # the peer hangs up on us
        left = await next_event(events, lambda e: isinstance(e, NodeLeft))
        assert left == NodeLeft(b.name, "static", "connection_closed")
        back = await next_event(events, lambda e: isinstance(e, NodeJoined))
        assert back == NodeJoined(b.name, "static", "reconnected")
        assert a.is_connected(b.name)
        assert cluster.statistics().topologies["static"].reconnects == 1


async def test_failed_discovery_keeps_the_last_list(make_node: NodeFactory) -> None:
    """After a failed lookup the last good list stays connected and is still healed."""
    a, b = await make_node("a"), await make_node("b")
    Strat = scripted(answer=frozenset({b.name}))
    cluster = Cluster(a, [Topology.create("api", Strat)], config=FAST)
    events = cluster.events()
    async with cluster:
        await next_event(events, lambda e: isinstance(e, NodeJoined))
        Strat.answer = failing_lookup()
        failed = await next_event(events, lambda e: isinstance(e, DiscoveryFailed))
        assert failed == DiscoveryFailed("api", "the lookup service answered 403")
        await next_event(events, lambda e: isinstance(e, DiscoveryFailed))  # backed off, again
        assert a.is_connected(b.name)
        await b.disconnect(a.name)
        back = await next_event(events, lambda e: isinstance(e, NodeJoined))
        assert back == NodeJoined(b.name, "api", "reconnected")
        stats = cluster.statistics().topologies["api"]
    assert stats.discovery_errors >= 2 and stats.listed == {b.name}
    assert stats.disconnects_ok == 0  # nothing was pruned on the failed lookups


async def test_vanished_nodes_are_pruned_unless_disabled(make_node: NodeFactory) -> None:
    """A node that leaves discovery is disconnected (reason pruned); prune=False keeps it."""
    a, b, c = await make_node("a"), await make_node("b"), await make_node("c")
    Pruning = scripted(answer=frozenset({b.name}))
    Keeping = scripted(answer=frozenset({c.name}))
    topologies = [Topology.create("p", Pruning), Topology.create("k", Keeping, prune=False)]
    cluster = Cluster(a, topologies, config=FAST)
    events = cluster.events()
    async with cluster:
        await wait_for(lambda: set(a.nodes()) == {b.name, c.name})
        Pruning.answer = Keeping.answer = frozenset()
        gone, left = await next_events(
            events, lambda e: isinstance(e, DisconnectNode), lambda e: isinstance(e, NodeLeft)
        )
        assert gone == DisconnectNode(b.name, "p", True, None, gone.duration)  # type: ignore[union-attr]
        assert left == NodeLeft(b.name, "p", "pruned")
        rounds = Keeping.calls
        await wait_for(lambda: Keeping.calls >= rounds + 2)
        assert a.nodes() == [c.name]


async def test_crashing_strategy_restarts_with_backoff(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A strategy that raises is logged with its topology and restarted, more slowly each
    time, while the node and another topology carry on."""
    starts: list[float] = []

    class Crashy(Strategy):
        name = "crashy"

        @dataclass(frozen=True, slots=True)
        class Options:
            pass

        async def run(self, ctx: StrategyContext) -> None:
            starts.append(asyncio.get_running_loop().time())
            raise RuntimeError("boom")

    a, b = await make_node("a"), await make_node("b")
    topologies = [Topology.create("bad", Crashy), epmd_topology("good", b.name)]
    cluster = Cluster(a, topologies, config=FAST)
    events = cluster.events()
    caplog.set_level(logging.ERROR, logger="nodemesh.cluster")
    async with cluster:
        for _ in range(4):
            crash = await next_event(events, lambda e: isinstance(e, StrategyCrashed))
            assert crash.topology == "bad" and crash.error == "RuntimeError: boom"  # type: ignore[union-attr]
        await wait_for(lambda: a.is_connected(b.name))
        stats = cluster.statistics().topologies
    assert stats["bad"].restarts >= 4 and stats["good"].running
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps[2] > gaps[0]  # 25-50 ms, then 100-200 ms: backoff with jitter
    lines = [r.getMessage() for r in caplog.records if r.name == "nodemesh.cluster"]
    assert lines[0].startswith("[nodemesh:bad] strategy crashy crashed (RuntimeError: boom)")
    assert all("\n" not in line for line in lines)


async def test_events_and_counters_for_each_outcome(make_node: NodeFactory) -> None:
    """Connect and disconnect outcomes are events with reasons, counted per topology."""
    a, b = await make_node("a"), await make_node("b")
    not_alive = "ghost@127.0.0.1"

    async def connect(node: str) -> bool | None:
        return None if node == not_alive else await a.connect(node)

    async def disconnect(node: str) -> bool | None:
        return False  # libcluster: already disconnected

    hooks = Hooks(connect=connect, disconnect=disconnect)
    Strat = scripted(answer=frozenset({b.name, not_alive}))
    cluster = Cluster(a, [Topology.create("t", Strat, hooks=hooks)], config=FAST)
    events = cluster.events()
    async with cluster:
        seen: list[object] = []
        await next_event(events, lambda e: isinstance(e, NodeJoined), seen=seen)  # type: ignore[arg-type]
        await next_event(
            events,
            lambda e: isinstance(e, ConnectNode) and e.node == not_alive,
            seen=seen,  # type: ignore[arg-type]
        )
        Strat.answer = frozenset()
        refused = await next_event(events, lambda e: isinstance(e, DisconnectNode))
        stats = cluster.statistics()
    ok = next(e for e in seen if isinstance(e, ConnectNode) and e.ok)
    assert ok.node == b.name and ok.reason is None and 0 <= ok.duration < 3
    ghost = next(e for e in seen if isinstance(e, ConnectNode) and not e.ok)
    assert ghost.reason == "not_part_of_network"
    assert refused == DisconnectNode(b.name, "t", False, "already_disconnected", refused.duration)  # type: ignore[union-attr]
    t = stats.topologies["t"]
    assert t.connects_ok == 1 and t.connect_errors["not_part_of_network"] >= 1
    assert t.disconnect_errors == {"already_disconnected": 1} and t.nodes_joined == 1
    assert stats.nodes == {b.name} and stats.connects_ok == 1


async def test_incoming_connection_is_a_join_attributed_to_the_topology(
    make_node: NodeFactory,
) -> None:
    """A listed node that connects first is reported as joined through that topology."""
    a, b = await make_node("a"), await make_node("b")
    Strat = scripted(answer=frozenset({b.name}))
    cluster = Cluster(a, [Topology.create("t", Strat, hooks=Hooks(connect=_never))], config=FAST)
    events = cluster.events()
    async with cluster:
        await wait_for(lambda: Strat.calls >= 1)
        await b.connect(a.name)
        joined = await next_event(events, lambda e: isinstance(e, NodeJoined))
    assert joined == NodeJoined(b.name, "t", "connected")


async def _never(node: str) -> bool:
    return False


async def test_cluster_stops_when_closed_and_streams_end(make_node: NodeFactory) -> None:
    """aclose() stops every topology and ends the event streams; connections stay."""
    a, b = await make_node("a"), await make_node("b")
    cluster = Cluster(a, {"static": {"strategy": "epmd", "config": {"hosts": [b.name]}}})
    events = cluster.events()
    await cluster.start()
    await next_event(events, lambda e: isinstance(e, NodeJoined))
    await cluster.aclose()
    assert not cluster.statistics().topologies["static"].running
    async with asyncio.timeout(5):
        rest = [event async for event in events]  # what was queued, then the end
    assert not any(isinstance(e, NodeJoined | NodeLeft) for e in rest)
    with pytest.raises(EOFError):
        await events.get(timeout=1)
    with pytest.raises(EOFError):
        await cluster.events().get(timeout=1)  # subscribed too late: ended already
    assert a.is_connected(b.name)


async def test_request_round_runs_discovery_now(make_node: NodeFactory) -> None:
    """request_round() brings a round forward; one asked for mid-round gives one more."""
    gate = asyncio.Event()
    contexts: list[StrategyContext] = []

    class Watched(scripted()):  # type: ignore[misc]
        @dataclass(frozen=True, slots=True)
        class Options:
            polling_interval: int = 3_600_000  # an hour: only requests bring rounds

        async def discover(self) -> Set[str]:
            contexts.append(self.ctx)
            type(self).calls += 1
            if type(self).calls == 2:
                await gate.wait()
            return frozenset()

    a = await make_node("a")
    async with Cluster(a, [Topology.create("w", Watched)], config=FAST) as cluster:
        rounds = lambda: cluster.statistics().topologies["w"].discovery_rounds  # noqa: E731
        await wait_for(lambda: rounds() == 1, what="the first round")
        contexts[0].request_round()
        await wait_for(lambda: Watched.calls == 2, what="the requested round to start")
        contexts[0].request_round()  # while round 2 waits on the gate
        gate.set()
        await wait_for(lambda: rounds() == 3, what="the round requested mid-round")
        assert Watched.calls == 3


async def test_run_in_a_callers_task_group_until_cancelled(make_node: NodeFactory) -> None:
    """await cluster.run() in the caller's task group forms the cluster; cancelling it
    stops the topologies and ends the event streams, and the connections stay."""
    a, b = await make_node("a"), await make_node("b")
    cluster = Cluster(a, [epmd_topology("static", b.name)], config=FAST)
    events = cluster.events()
    async with asyncio.TaskGroup() as tg:
        running = tg.create_task(cluster.run())
        joined = await next_event(events, lambda e: isinstance(e, NodeJoined))
        assert joined == NodeJoined(b.name, "static", "discovered")
        with pytest.raises(RuntimeError, match="started already"):
            await cluster.start()  # one cluster runs once
        running.cancel()
    assert running.cancelled()
    assert not cluster.statistics().topologies["static"].running
    async with asyncio.timeout(5):
        rest = [e async for e in events]  # what was queued, then the end
    assert not any(isinstance(e, NodeJoined | NodeLeft) for e in rest)
    assert a.is_connected(b.name)


async def test_run_returns_when_the_node_stops(make_node: NodeFactory) -> None:
    """run() ends by itself, without an error, once its node stops."""
    a = await make_node("a")
    cluster = Cluster(a, [epmd_topology("static", "nobody@127.0.0.1")], config=FAST)
    async with asyncio.TaskGroup() as tg:
        running = tg.create_task(cluster.run())
        await wait_for(lambda: cluster.statistics().topologies["static"].discovery_rounds >= 1)
        await a.aclose()
    assert running.result() is None
    with pytest.raises(EOFError):
        await cluster.events().get(timeout=1)  # the cluster ended with its node


async def test_a_closed_cluster_does_not_run_again(make_node: NodeFactory) -> None:
    """After async with, run() raises RuntimeError rather than running a second time."""
    a = await make_node("a")
    async with Cluster(a, {}, config=FAST) as cluster:
        pass
    with pytest.raises(RuntimeError):
        await cluster.run()


async def test_a_watch_runs_after_a_round_works_and_its_crash_restarts(
    make_node: NodeFactory,
) -> None:
    """A polling strategy's watch() starts once a round has worked; when it raises, the
    strategy is restarted and StrategyCrashed names the error itself, not a group."""
    a = await make_node("a")
    watches: list[int] = []

    class Watching(scripted(answer=failing_lookup())):  # type: ignore[misc]
        async def watch(self) -> None:
            watches.append(type(self).calls)
            raise KeyError("gone")

    cluster = Cluster(a, [Topology.create("w", Watching)], config=FAST)
    events = cluster.events()
    async with cluster:
        await next_event(events, lambda e: isinstance(e, DiscoveryFailed))
        assert watches == []  # no watch while no round has worked
        Watching.answer = frozenset()
        crash = await next_event(events, lambda e: isinstance(e, StrategyCrashed))
    assert crash.error == "KeyError: 'gone'"  # type: ignore[union-attr]
    assert watches and watches[0] >= 2
