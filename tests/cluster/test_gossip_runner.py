"""Gossip through the cluster runner: a libcluster-shaped topology forms the mesh, and
cluster events name the gossip topology."""

from __future__ import annotations

from contextlib import AsyncExitStack

from conftest import NodeFactory
from nodemesh.cluster import Cluster, NodeJoined
from support.gossip_node import free_udp_port
from support.net import wait_for


async def test_three_clusters_with_a_gossip_topology_mesh(make_node: NodeFactory) -> None:
    """Three nodes, each with ``{"local": {"strategy": "gossip", ...}}``: a full mesh, and
    NodeJoined events attributed to the topology."""
    port = free_udp_port()
    topology = {
        "local": {
            "strategy": "gossip",
            "config": {
                "port": port,
                "multicast_if": "127.0.0.1",
                "heartbeat_interval_max": 500,
            },
        }
    }
    nodes = [await make_node(f"c{i}") for i in range(3)]
    async with AsyncExitStack() as stack:
        clusters = [Cluster(n, topology) for n in nodes]
        events = clusters[0].events()  # before anything starts: no event missed
        for cluster in clusters:
            await stack.enter_async_context(cluster)
        await wait_for(
            lambda: all(len(n.nodes()) == 2 for n in nodes), 10, "a full mesh via the runner"
        )
        joined = []
        while len(joined) < 2:
            event = await events.get(timeout=10)
            if isinstance(event, NodeJoined):
                joined.append(event)
        assert {e.node for e in joined} == {nodes[1].name, nodes[2].name}
        assert all(e.topology == "local" for e in joined)
