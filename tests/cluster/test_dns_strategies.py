"""Kubernetes.DNS, Kubernetes.DNSSRV and DNSPoll: options, node names, failed lookups.

Node names are checked two ways against the same real dnsmasq: a table of what
libcluster's code makes of each answer, and (interop) libcluster's own expressions
evaluated by Erlang's ``inet_res`` on a real ``erl``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from nodemesh.cluster import Topology, resolve_strategy
from nodemesh.cluster.strategies.dns_poll import DnsPollStrategy
from nodemesh.cluster.strategies.kubernetes_dns import KubernetesDnsStrategy
from nodemesh.cluster.strategies.kubernetes_dnssrv import KubernetesDnsSrvStrategy, srv_name
from nodemesh.cluster.strategy import PollingStrategy
from nodemesh.errors import ConfigError, DiscoveryError
from support.dns import Dnsmasq, DnsProxy, StubContext, require_dnsmasq
from support.erlang import erl_eval

SVC = "myapp-headless.default.svc.cluster.local"
STS = "myapp.default.svc.cluster.local"
HOSTS = {
    SVC: [
        "10.48.33.136",
        "10.48.33.137",
        "fd00::1",
        "FD00:0:0:0:0:ffff:a30:2187",
        "::ffff:10.0.0.9",
    ],
    "web.example.com": ["192.0.2.10", "2001:db8::1:0:0:1"],
}
SRV = {STS: ["myapp-0.myapp.default.svc.cluster.local", "myapp-1.myapp.default.svc.cluster.local"]}
# A pod's search list, without a nameserver line (the tests name the server).
POD_SEARCH = "search default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"


@pytest.fixture
async def dnsmasq(tmp_path: Path) -> AsyncIterator[Dnsmasq]:
    """A real dnsmasq serving a headless service, a StatefulSet's SRV records and a name."""
    async with Dnsmasq(tmp_path, executable=require_dnsmasq()) as server:
        await server.set_hosts(HOSTS)
        await server.set_srv(SRV)
        yield server


@pytest.fixture
def resolv_conf(tmp_path: Path) -> str:
    path = tmp_path / "resolv.conf"
    path.write_text(POD_SEARCH)
    return str(path)


def strategy(cls: type[PollingStrategy], **options: Any) -> PollingStrategy:
    topology = Topology.create("t", cls, options)
    instance = cls(topology.options)
    instance.bind(StubContext())
    return instance


def dns_options(server: Dnsmasq, resolv_conf: str, **options: Any) -> dict[str, Any]:
    return {"nameservers": [server.nameserver], "resolv_conf": resolv_conf, **options}


# -- options -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("kubernetes_dns", KubernetesDnsStrategy),
        ("Cluster.Strategy.Kubernetes.DNS", KubernetesDnsStrategy),
        ("kubernetes_dnssrv", KubernetesDnsSrvStrategy),
        ("Elixir.Cluster.Strategy.Kubernetes.DNSSRV", KubernetesDnsSrvStrategy),
        ("dns_poll", DnsPollStrategy),
        ("Cluster.Strategy.DNSPoll", DnsPollStrategy),
    ],
)
def test_strategy_names_resolve(name: str, cls: type[PollingStrategy]) -> None:
    """nodemesh's names and libcluster's module names find the strategies."""
    assert resolve_strategy(name) is cls


def test_defaults_are_libclusters() -> None:
    """polling_interval is 5000 ms; Kubernetes.DNS asks A first, DNSPoll A and AAAA."""
    k8s = Topology.create("k", "kubernetes_dns", {"service": "s", "application_name": "app"})
    srv = Topology.create(
        "s", "kubernetes_dnssrv", {"service": "s", "namespace": "n", "application_name": "a"}
    )
    poll = Topology.create("p", "dns_poll", {"query": "q.example", "node_basename": "app"})
    assert k8s.options.polling_interval == srv.options.polling_interval == 5000
    assert poll.options.polling_interval == 5000
    assert (k8s.options.address_family, poll.options.address_family) == ("auto", "any")
    assert poll.options.dns_timeout == 5000
    assert poll.options.resolv_conf == "/etc/resolv.conf" and poll.options.nameservers == ()


@pytest.mark.parametrize(
    ("strategy_name", "options", "message"),
    [
        ("kubernetes_dns", {"service": "s"}, "option 'application_name' is required"),
        ("kubernetes_dnssrv", {"service": "s", "application_name": "a"}, "'namespace' is required"),
        ("dns_poll", {"query": "q", "node_basename": "a@b"}, "'node_basename' must be a node"),
        ("dns_poll", {"query": " ", "node_basename": "a"}, "option 'query' must not be empty"),
        (
            "kubernetes_dns",
            {"service": "s", "application_name": "a", "polling_interval": 0},
            "'polling_interval' must be a positive number of ms",
        ),
        (
            "kubernetes_dns",
            {"service": "s", "application_name": "a", "nameservers": ["kube-dns"]},
            "option 'nameservers': nameserver 'kube-dns' must be an IP address",
        ),
        (
            "dns_poll",
            {"query": "q", "node_basename": "a", "address_family": "ipv6"},
            "option 'address_family' must be 'inet' or 'inet6' or 'any' or 'auto'",
        ),
    ],
)
def test_bad_options_are_config_errors(
    strategy_name: str, options: dict[str, Any], message: str
) -> None:
    """Missing and malformed options are ConfigErrors naming the topology and option."""
    with pytest.raises(ConfigError, match=f"^topology 't': .*{message}"):
        Topology.create("t", strategy_name, options)


def test_srv_name_follows_cluster_domain() -> None:
    """<service>.<namespace>.svc. then $CLUSTER_DOMAIN, else 'cluster.local.' (absolute)."""
    assert srv_name("myapp", "default", {}) == "myapp.default.svc.cluster.local."
    assert (
        srv_name("myapp", "prod", {"CLUSTER_DOMAIN": "corp.local"}) == "myapp.prod.svc.corp.local"
    )


# -- node names ------------------------------------------------------------------------------
# What libcluster 3.5 makes of the answers above: "#{app}@#{:inet_parse.ntoa(ip)}" and
# "#{app}@#{srv target}", the target as inet_res gives it (no final dot).
K8S_DNS_NAMES = {"app@10.48.33.136", "app@10.48.33.137"}
DNS_POLL_NAMES = {
    "app@192.0.2.10",
    "app@2001:db8::1:0:0:1",
}
DNS_POLL_SVC_NAMES = {
    "app@10.48.33.136",
    "app@10.48.33.137",
    "app@fd00::1",
    "app@fd00::ffff:a30:2187",
    "app@::ffff:10.0.0.9",
}
SRV_NAMES = {
    "app@myapp-0.myapp.default.svc.cluster.local",
    "app@myapp-1.myapp.default.svc.cluster.local",
}


async def test_kubernetes_dns_names(dnsmasq: Dnsmasq, resolv_conf: str) -> None:
    """Kubernetes.DNS finds the short service name by the search list: app@<ipv4>."""
    opts = dns_options(dnsmasq, resolv_conf, service="myapp-headless", application_name="app")
    assert await strategy(KubernetesDnsStrategy, **opts).discover() == K8S_DNS_NAMES
    opts["address_family"] = "inet6"
    v6 = {"app@fd00::1", "app@fd00::ffff:a30:2187", "app@::ffff:10.0.0.9"}
    assert await strategy(KubernetesDnsStrategy, **opts).discover() == v6


async def test_kubernetes_dns_auto_falls_back_to_aaaa(dnsmasq: Dnsmasq, resolv_conf: str) -> None:
    """On an IPv6-only cluster (no A records) Kubernetes.DNS uses the AAAA records."""
    await dnsmasq.set_hosts({SVC: ["fd00::1", "fd00::2"]})
    opts = dns_options(dnsmasq, resolv_conf, service="myapp-headless", application_name="app")
    assert await strategy(KubernetesDnsStrategy, **opts).discover() == {
        "app@fd00::1",
        "app@fd00::2",
    }


async def test_dns_poll_names(dnsmasq: Dnsmasq, resolv_conf: str) -> None:
    """DNSPoll connects basename@<ip> for A and AAAA records, IPv6 printed plainly."""
    opts = dns_options(dnsmasq, resolv_conf, query="web.example.com", node_basename="app")
    assert await strategy(DnsPollStrategy, **opts).discover() == DNS_POLL_NAMES
    opts["query"] = SVC
    assert await strategy(DnsPollStrategy, **opts).discover() == DNS_POLL_SVC_NAMES


async def test_kubernetes_dnssrv_names(
    dnsmasq: Dnsmasq, resolv_conf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kubernetes.DNSSRV connects app@<target without the final dot>; CLUSTER_DOMAIN moves
    the name, and one without a final dot goes through the search list."""
    monkeypatch.delenv("CLUSTER_DOMAIN", raising=False)
    opts = dns_options(
        dnsmasq, resolv_conf, service="myapp", namespace="default", application_name="app"
    )
    assert await strategy(KubernetesDnsSrvStrategy, **opts).discover() == SRV_NAMES
    await dnsmasq.set_srv({"myapp.default.svc.corp.local": ["myapp-0.myapp.corp.local."]})
    monkeypatch.setenv("CLUSTER_DOMAIN", "corp.local.")
    assert await strategy(KubernetesDnsSrvStrategy, **opts).discover() == {
        "app@myapp-0.myapp.corp.local"
    }
    await dnsmasq.set_srv({"myapp.default.svc.corp.cluster.local": ["myapp-0.x.cluster.local"]})
    monkeypatch.setenv("CLUSTER_DOMAIN", "corp")  # relative: found with "cluster.local" appended
    assert await strategy(KubernetesDnsSrvStrategy, **opts).discover() == {
        "app@myapp-0.x.cluster.local"
    }


async def test_missing_name_is_a_discovery_error(dnsmasq: Dnsmasq, resolv_conf: str) -> None:
    """A service that does not resolve raises DiscoveryError (the runner keeps its list)."""
    opts = dns_options(dnsmasq, resolv_conf, service="other", application_name="app")
    with pytest.raises(DiscoveryError, match="no such DNS name: other"):
        await strategy(KubernetesDnsStrategy, **opts).discover()


@pytest.mark.interop
async def test_names_equal_libclusters_on_erlang(dnsmasq: Dnsmasq, resolv_conf: str) -> None:
    """libcluster's own lookups, run by Erlang's inet_res against the same dnsmasq, give
    the same node names as nodemesh's strategies."""
    erlang = await asyncio.to_thread(erl_eval, _libcluster_lookups(dnsmasq.port, resolv_conf))
    got: dict[str, set[str]] = {}
    for line in erlang.splitlines():
        tag, _, name = line.partition(" ")
        got.setdefault(tag, set()).add(name)
    k8s = dns_options(dnsmasq, resolv_conf, service="myapp-headless", application_name="app")
    srv = dns_options(
        dnsmasq, resolv_conf, service="myapp", namespace="default", application_name="app"
    )
    poll = dns_options(dnsmasq, resolv_conf, query=SVC, node_basename="app")
    assert got == {
        "k8s_dns": await strategy(KubernetesDnsStrategy, **k8s).discover(),
        "k8s_dnssrv": await strategy(KubernetesDnsSrvStrategy, **srv).discover(),
        "dns_poll": await strategy(DnsPollStrategy, **poll).discover(),
    }
    assert got["dns_poll"] == DNS_POLL_SVC_NAMES and got["k8s_dnssrv"] == SRV_NAMES


def _libcluster_lookups(port: int, resolv_conf: str) -> str:
    # Straight from libcluster 3.5's strategies: Kubernetes.DNS (getbyname a, ntoa),
    # Kubernetes.DNSSRV (getbyname srv, element 4), DNSPoll (lookup a ++ aaaa, ntoa).
    return f"""
        inet_db:res_option(resolv_conf, "{resolv_conf}"),
        inet_db:add_ns({{127,0,0,1}}, {port}),
        P = fun(Tag, Names) -> [io:format("~s ~s~n", [Tag, N]) || N <- Names] end,
        {{ok, {{hostent, _, [], inet, _, As}}}} = inet_res:getbyname("myapp-headless", a),
        P("k8s_dns", ["app@" ++ inet_parse:ntoa(A) || A <- As]),
        {{ok, {{hostent, _, _, srv, _, Ss}}}} =
            inet_res:getbyname("myapp.default.svc.cluster.local.", srv),
        P("k8s_dnssrv", ["app@" ++ element(4, S) || S <- Ss]),
        Q = "{SVC}",
        Ips = inet_res:lookup(Q, in, a) ++ inet_res:lookup(Q, in, aaaa),
        P("dns_poll", ["app@" ++ inet_parse:ntoa(Ip) || Ip <- Ips]).
    """


# -- truncated answers ---------------------------------------------------------------------
BIG = "big.example.com"


def big(count: int) -> Mapping[str, list[str]]:
    return {BIG: [f"10.2.{i // 256}.{i % 256}" for i in range(count)]}


async def test_truncated_answer_without_tcp_fails_the_lookup(
    dnsmasq: Dnsmasq, resolv_conf: str
) -> None:
    """When TCP fails after a truncated UDP answer, discover() raises DiscoveryError (the
    runner keeps its last list: a partial answer never prunes); with TCP back, the full
    answer replaces the list."""
    await dnsmasq.set_hosts(big(300))
    proxy = DnsProxy(("127.0.0.1", dnsmasq.port))
    await proxy.start(tcp=True)
    try:
        poll = strategy(
            DnsPollStrategy,
            query=BIG,
            node_basename="app",
            nameservers=[proxy.nameserver],
            resolv_conf=resolv_conf,
            address_family="inet",
        )
        assert len(await poll.discover()) == 300
        await dnsmasq.set_hosts(big(299))  # one node leaves while TCP is blocked
        await proxy.set_tcp(False)
        with pytest.raises(DiscoveryError) as info:
            await poll.discover()
        assert f"DNS lookup of {BIG} A failed: {proxy.nameserver}: truncated answer" in str(
            info.value
        )
        await proxy.set_tcp(True)
        assert len(await poll.discover()) == 299
    finally:
        await proxy.aclose()
