"""A topology run alone: what it reports to its sink, with real nodes and no cluster."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cluster.helpers import Recorder, make_run, scripted
from conftest import NodeFactory
from nodemesh.cluster import (
    ConnectNode,
    DisconnectNode,
    Hooks,
    Strategy,
    StrategyContext,
    StrategyCrashed,
    Topology,
)
from support.net import wait_for


async def test_connect_claims_and_reports_each_outcome(make_node: NodeFactory) -> None:
    """A connect claims the node for its NodeUp, keeps the claim on success, drops it on
    failure, and reports a counted ConnectNode either way."""
    a, b = await make_node("a"), await make_node("b")
    sink = Recorder()
    run = make_run(a, Topology.create("t", scripted()), sink)
    ghost = "ghost@127.0.0.1"
    result = await run.connect_many({b.name: "discovered", ghost: "discovered", a.name: "x"})
    assert result == {b.name: True, ghost: False}  # self is never connected
    assert sink.claims == {b.name: ("t", "discovered")}
    outcomes = {(e.node, e.ok, e.reason) for e in sink.events if isinstance(e, ConnectNode)}
    assert outcomes == {(b.name, True, None), (ghost, False, "unreachable")}
    stats = run.counters.snapshot()
    assert stats.connects_ok == 1 and stats.connect_errors == {"unreachable": 1}
    assert run.lists(b.name) and not run.lists(ghost)


async def test_prune_spares_nodes_listed_elsewhere(make_node: NodeFactory) -> None:
    """Prune disconnects vanished nodes, except those another topology lists, and tells
    the sink which disconnects are prunes."""
    a, b, c = await make_node("a"), await make_node("b"), await make_node("c")
    assert await a.connect(b.name) and await a.connect(c.name)
    sink = Recorder(elsewhere={c.name})
    run = make_run(a, Topology.create("t", scripted()), sink)
    await run.prune({b.name, c.name, "gone@127.0.0.1"})
    assert sink.pruned == {b.name}
    assert sink.events == [DisconnectNode(b.name, "t", True, None, sink.events[0].duration)]  # type: ignore[union-attr]
    await wait_for(lambda: a.nodes() == [c.name])


async def test_a_crash_is_reported_and_the_strategy_restarted(make_node: NodeFactory) -> None:
    """A strategy that raises is reported as StrategyCrashed and run again."""
    starts: list[StrategyContext] = []

    class Crashy(Strategy):
        name = "crashy"

        @dataclass(frozen=True, slots=True)
        class Options:
            pass

        async def run(self, ctx: StrategyContext) -> None:
            starts.append(ctx)
            raise RuntimeError("boom")

    a = await make_node("a")
    sink = Recorder()
    run = make_run(a, Topology.create("bad", Crashy), sink)
    task = asyncio.create_task(run.supervise())
    try:
        await wait_for(lambda: len(starts) >= 2, what="a restart")
    finally:
        task.cancel()
    crash = sink.events[0]
    assert isinstance(crash, StrategyCrashed) and crash.error == "RuntimeError: boom"
    assert starts[0] is run and run.counters.restarts >= 1


async def test_hooks_replace_the_node(make_node: NodeFactory) -> None:
    """The topology's hooks, not the node, connect and list nodes."""
    a = await make_node("a")
    asked: list[str] = []

    async def connect(node: str) -> bool:
        asked.append(node)
        return True

    hooks = Hooks(connect=connect, list_nodes=lambda: ["listed@127.0.0.1"])
    run = make_run(a, Topology.create("t", scripted(), hooks=hooks), Recorder())
    await run.connect_nodes({"x@127.0.0.1", "listed@127.0.0.1"})
    assert asked == ["x@127.0.0.1"] and run.list_nodes() == ["listed@127.0.0.1"]
    assert run.nodes() == {"x@127.0.0.1", "listed@127.0.0.1"} and a.nodes() == []
