"""Real nodes joining and leaving a cluster as a real dnsmasq's records change.

libcluster names nodes ``app@<ip>``, so distinct nodes need distinct addresses. On Linux
all of 127.0.0.0/8 is loopback: each test node is named ``app@127.0.0.<n>`` (one node
``app@::1``) and listens on that address only. Nodes with the same alive name on one host
cannot share an EPMD (the second registration of ``app`` is refused), so they run
EPMD-less (``NodeConfig(use_epmd=False, port=P)``, as with Erlang's ``-dist_listen`` and
``-erl_epmd_port``): every node listens on the same port P at its own address, and a node
dials ``<host>:P``. Nothing is faked between the DNS answer and the connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cluster.helpers import FAST, next_event, next_events
from conftest import AppNode
from nodemesh.cluster import (
    Cluster,
    ClusterEvent,
    DisconnectNode,
    DiscoveryFailed,
    NodeJoined,
    NodeLeft,
    Topology,
)
from support.dns import Dnsmasq, DnsProxy, require_dnsmasq
from support.net import wait_for

SVC = "web.default.svc.cluster.local"


@pytest.fixture
async def dnsmasq(tmp_path: Path) -> AsyncIterator[Dnsmasq]:
    """A real dnsmasq on a free loopback port."""
    async with Dnsmasq(tmp_path, executable=require_dnsmasq()) as server:
        yield server


def topology(strategy: str, server: Dnsmasq, tmp_path: Path, **options: Any) -> Topology:
    """A fast-polling DNS topology asking ``server``, with a pod's search list."""
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text("search default.svc.cluster.local svc.cluster.local\noptions ndots:5\n")
    config = {
        "polling_interval": 50,
        "nameservers": [server.nameserver],
        "resolv_conf": str(resolv_conf),
        "dns_timeout": 200,
        **options,
    }
    return Topology.create("dns", strategy, config)


def is_joined(event: ClusterEvent) -> bool:
    return isinstance(event, NodeJoined)


async def test_headless_service_records_make_nodes_join_and_leave(
    dnsmasq: Dnsmasq, app_node: AppNode, tmp_path: Path
) -> None:
    """Kubernetes.DNS: an A record added joins its node; one removed prunes it."""
    a, b, c = await app_node("127.0.0.1"), await app_node("127.0.0.2"), await app_node("127.0.0.3")
    await dnsmasq.set_hosts({SVC: ["127.0.0.1", "127.0.0.2"]})
    k8s = topology("kubernetes_dns", dnsmasq, tmp_path, service="web", application_name="app")
    cluster = Cluster(a, [k8s], config=FAST)
    events = cluster.events()
    async with cluster:
        assert await next_event(events, is_joined) == NodeJoined(b.name, "dns", "discovered")
        await dnsmasq.set_hosts({SVC: ["127.0.0.1", "127.0.0.2", "127.0.0.3"]})  # pod ready
        assert await next_event(events, is_joined) == NodeJoined(c.name, "dns", "discovered")
        await dnsmasq.set_hosts({SVC: ["127.0.0.1", "127.0.0.3"]})  # b's pod is gone
        left = await next_event(events, lambda e: isinstance(e, NodeLeft))
        assert left == NodeLeft(b.name, "dns", "pruned")
        assert a.nodes() == [c.name]


async def test_dns_poll_joins_ipv4_and_ipv6_nodes(
    dnsmasq: Dnsmasq, app_node: AppNode, tmp_path: Path
) -> None:
    """DNSPoll: A and AAAA records of one name join app@127.0.0.2 and app@::1."""
    a, v4, v6 = await app_node("127.0.0.1"), await app_node("127.0.0.2"), await app_node("::1")
    await dnsmasq.set_hosts({"app.internal": ["127.0.0.1", "127.0.0.2", "::1"]})
    poll = topology("dns_poll", dnsmasq, tmp_path, query="app.internal.", node_basename="app")
    async with Cluster(a, [poll], config=FAST):
        await wait_for(lambda: set(a.nodes()) == {"app@127.0.0.2", "app@::1"})
    assert {v4.name, v6.name} == {"app@127.0.0.2", "app@::1"}


async def test_statefulset_srv_records_make_nodes_join_and_leave(
    dnsmasq: Dnsmasq, app_node: AppNode, tmp_path: Path
) -> None:
    """Kubernetes.DNSSRV: SRV records added and removed join and prune app@<target>.

    The targets are the names ``127.0.0.2.`` and ``127.0.0.3.`` so that the system
    resolver, which these in-process tests cannot point at dnsmasq, reaches them;
    StatefulSet names (``web-0.web.default.svc.cluster.local``) are checked in
    test_dns_strategies.py and end to end in test_dns_statefulset.py.
    """
    a, b, c = await app_node("127.0.0.1"), await app_node("127.0.0.2"), await app_node("127.0.0.3")
    await dnsmasq.set_srv({SVC: ["127.0.0.1", "127.0.0.2"]})
    srv = topology(
        "kubernetes_dnssrv",
        dnsmasq,
        tmp_path,
        service="web",
        namespace="default",
        application_name="app",
    )
    cluster = Cluster(a, [srv], config=FAST)
    events = cluster.events()
    async with cluster:
        assert await next_event(events, is_joined) == NodeJoined(b.name, "dns", "discovered")
        await dnsmasq.set_srv({SVC: ["127.0.0.1", "127.0.0.3"]})  # dnsmasq restarts
        joined, left = await next_events(events, is_joined, lambda e: isinstance(e, NodeLeft))
        assert joined == NodeJoined(c.name, "dns", "discovered")
        assert left == NodeLeft(b.name, "dns", "pruned")
        assert a.nodes() == [c.name]


async def test_resolver_outage_keeps_the_cluster_whole(
    dnsmasq: Dnsmasq, app_node: AppNode, tmp_path: Path
) -> None:
    """With dnsmasq down, lookups fail and nothing is disconnected; when it is back, the
    records it serves then are joined (libcluster would drop every node)."""
    a, b, c = await app_node("127.0.0.1"), await app_node("127.0.0.2"), await app_node("127.0.0.3")
    await dnsmasq.set_hosts({SVC: ["127.0.0.1", "127.0.0.2", "127.0.0.3"]})
    k8s = topology("kubernetes_dns", dnsmasq, tmp_path, service="web", application_name="app")
    cluster = Cluster(a, [k8s], config=FAST)
    events = cluster.events()
    seen: list[ClusterEvent] = []
    async with cluster:
        await wait_for(lambda: set(a.nodes()) == {b.name, c.name})
        await dnsmasq.stop()
        for _ in range(3):  # three failed rounds in a row, backing off
            failed = await next_event(events, lambda e: isinstance(e, DiscoveryFailed), seen=seen)
            assert f"{dnsmasq.nameserver}" in failed.error  # type: ignore[union-attr]
        assert not [e for e in seen if isinstance(e, NodeLeft | DisconnectNode)]
        assert set(a.nodes()) == {b.name, c.name}
        d = await app_node("127.0.0.4")
        await dnsmasq.set_hosts({SVC: ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]})
        await dnsmasq.start()
        joined = await next_event(events, is_joined, seen=seen)
        stats = cluster.statistics().topologies["dns"]
    assert joined == NodeJoined(d.name, "dns", "discovered")
    assert not [e for e in seen if isinstance(e, NodeLeft | DisconnectNode)]
    assert stats.discovery_errors >= 3 and stats.disconnects_ok == 0 and stats.nodes_left == 0


async def test_truncated_answer_without_tcp_prunes_nothing(
    dnsmasq: Dnsmasq, app_node: AppNode, tmp_path: Path
) -> None:
    """Behind a forwarder that refuses TCP, an answer too big for UDP fails the lookup:
    the node whose record went away stays connected until TCP is back."""
    a, b = await app_node("127.0.0.1"), await app_node("127.0.0.2")
    filler = [f"127.1.{i // 256}.{i % 256}" for i in range(1, 150)]  # no node listens there
    await dnsmasq.set_hosts({SVC: ["127.0.0.1", "127.0.0.2", *filler]})
    proxy = DnsProxy(("127.0.0.1", dnsmasq.port))
    await proxy.start(tcp=True)
    k8s = topology(
        "kubernetes_dns",
        dnsmasq,
        tmp_path,
        service="web",
        application_name="app",
        nameservers=[proxy.nameserver],
    )
    cluster = Cluster(a, [k8s], config=FAST)
    events = cluster.events()
    seen: list[ClusterEvent] = []
    try:
        async with cluster:
            await wait_for(lambda: b.name in a.nodes())
            await proxy.set_tcp(False)
            await dnsmasq.set_hosts({SVC: ["127.0.0.1", *filler]})  # b's record is gone
            for _ in range(2):
                failed = await next_event(
                    events, lambda e: isinstance(e, DiscoveryFailed), seen=seen
                )
                assert "truncated answer" in failed.error  # type: ignore[union-attr]
            assert not [e for e in seen if isinstance(e, NodeLeft) and e.node == b.name]
            assert b.name in a.nodes()
            await proxy.set_tcp(True)
            left = await next_event(events, lambda e: isinstance(e, NodeLeft), seen=seen)
            assert left == NodeLeft(b.name, "dns", "pruned")
    finally:
        await proxy.aclose()
