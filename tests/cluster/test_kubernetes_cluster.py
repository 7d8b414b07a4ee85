"""The kubernetes strategy forming a cluster of real nodes from what the served API lists.

In ``ip`` mode a listed pod at 10.48.33.136 is the node ``app@10.48.33.136``. To make the
names the fake API hands out real, reachable nodes on this one machine, every node here
has its own loopback address (127.0.0.1, 127.0.0.2, ...; Linux routes all of 127/8 to
``lo``) and runs EPMD-less (``NodeConfig(use_epmd=False, port=P, listen_address=...)``):
each listens on the same port P at its own address, and dials ``host:P`` for a peer, so
``app@127.0.0.3`` is reachable at exactly the address its name gives, as a pod IP is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cluster.helpers import FAST, next_event
from conftest import AppNode
from nodemesh.cluster import Cluster, DiscoveryFailed, NodeJoined, NodeLeft, Topology
from support.kube_api import FakeKubeApi, endpoint_slice, running_api, slice_endpoint
from support.net import wait_for

NS = "prod"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[FakeKubeApi]:
    """The fake API for namespace prod with its service-account directory."""
    async with running_api(tmp_path, namespace=NS) as server:
        server.service_account()
        yield server


def serve(api: FakeKubeApi, *addresses: str, not_ready: tuple[str, ...] = ()) -> None:
    """The EndpointSlice of Service ``app``: these pod addresses, ready or not."""
    entries = [slice_endpoint(ip, f"app-{ip.rsplit('.', 1)[1]}", NS) for ip in addresses]
    entries += [slice_endpoint(ip, f"app-{ip[-1]}", NS, ready=False) for ip in not_ready]
    api.put("endpointslices", endpoint_slice("app-6fz2k", NS, "app", entries))


def topology(api: FakeKubeApi, **options: Any) -> Topology:
    return Topology.create(
        "k8s",
        "kubernetes",
        {
            "kubernetes_node_basename": "app",
            "kubernetes_selector": "app=app",
            "kubernetes_ip_lookup_mode": "endpointslices",
            "kubernetes_master": api.url,
            "kubernetes_service_account_path": str(api.directory / "serviceaccount"),
            "kubernetes_watch_retry_min": 20,
            "kubernetes_watch_retry_max": 200,
            **options,
        },
    )


async def test_listed_pods_join_and_a_removed_one_leaves_at_once(
    api: FakeKubeApi, app_node: AppNode
) -> None:
    """Ready listed pods join; one removed is pruned at once by the watch, not the poll."""
    me, b, c = await app_node("127.0.0.1"), await app_node("127.0.0.2"), await app_node("127.0.0.3")
    await app_node("127.0.0.4")  # running, but its endpoint is not ready: not joined
    serve(api, "127.0.0.1", "127.0.0.2", "127.0.0.3", not_ready=("127.0.0.4",))
    cluster = Cluster(me, [topology(api, polling_interval=60_000)], config=FAST)
    events = cluster.events()
    async with cluster:
        joined = {
            (await next_event(events, lambda e: isinstance(e, NodeJoined))).node for _ in range(2)
        }
        assert joined == {b.name, c.name}
        await wait_for(lambda: api.watchers == 1, what="the watch")
        serve(api, "127.0.0.1", "127.0.0.2")
        left = await next_event(events, lambda e: isinstance(e, NodeLeft), timeout=5)
        assert left == NodeLeft(c.name, "k8s", "pruned")
        assert set(me.nodes()) == {b.name}
        assert cluster.statistics().topologies["k8s"].discovery_rounds == 2


async def test_a_403_keeps_everyone_connected(api: FakeKubeApi, app_node: AppNode) -> None:
    """A 403 fails discovery (naming the verb) but disconnects nobody; then it recovers."""
    me, b = await app_node("127.0.0.1"), await app_node("127.0.0.2")
    serve(api, "127.0.0.1", "127.0.0.2")
    cluster = Cluster(me, [topology(api, polling_interval=100)], config=FAST)
    events = cluster.events()
    async with cluster:
        await next_event(events, lambda e: isinstance(e, NodeJoined))
        api.forbidden |= {("list", "endpointslices"), ("watch", "endpointslices")}
        api.end_watches()
        failed = await next_event(events, lambda e: isinstance(e, DiscoveryFailed))
        assert isinstance(failed, DiscoveryFailed)
        assert 'lacks verb "list" on resource "endpointslices"' in failed.error
        await next_event(events, lambda e: isinstance(e, DiscoveryFailed))  # and again
        assert me.nodes() == [b.name]
        api.forbidden.clear()
        rounds = cluster.statistics().topologies["k8s"].discovery_rounds
        await wait_for(lambda: cluster.statistics().topologies["k8s"].discovery_rounds > rounds)
        assert me.nodes() == [b.name]
        assert cluster.statistics().topologies["k8s"].nodes_left == 0


async def test_without_pruning_a_removed_pod_stays(api: FakeKubeApi, app_node: AppNode) -> None:
    """With prune = false a pod that leaves the EndpointSlice stays connected."""
    me, b = await app_node("127.0.0.1"), await app_node("127.0.0.2")
    serve(api, "127.0.0.2")
    spec = topology(api, polling_interval=60_000)
    cluster = Cluster(
        me, [Topology(spec.name, spec.strategy_class, spec.options, prune=False)], config=FAST
    )
    events = cluster.events()
    async with cluster:
        await next_event(events, lambda e: isinstance(e, NodeJoined))
        await wait_for(lambda: api.watchers == 1, what="the watch")
        serve(api)
        await wait_for(lambda: cluster.statistics().topologies["k8s"].discovery_rounds == 2)
        assert cluster.statistics().topologies["k8s"].listed == frozenset()
        assert me.nodes() == [b.name]


async def test_an_ipv6_pod_joins_by_its_plain_ipv6_name(
    api: FakeKubeApi, app_node: AppNode
) -> None:
    """An IPv6 EndpointSlice lists ::1; the node app@::1 is connected by that name."""
    me, v6 = await app_node("127.0.0.1"), await app_node("::1")
    entries = [slice_endpoint("::1", "app-v6", NS)]
    api.put("endpointslices", endpoint_slice("app-v6", NS, "app", entries, address_type="IPv6"))
    cluster = Cluster(me, [topology(api)], config=FAST)
    events = cluster.events()
    async with cluster:
        joined = await next_event(events, lambda e: isinstance(e, NodeJoined))
    assert joined == NodeJoined("app@::1", "k8s", "discovered")
    assert v6.nodes() == [me.name]
