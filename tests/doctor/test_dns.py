"""DNS prerequisites against a real dnsmasq: answers counted, missing names explained."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nodemesh.cluster.strategies.dns_poll import DnsPollStrategy
from nodemesh.cluster.strategies.kubernetes_dns import KubernetesDnsStrategy
from nodemesh.cluster.strategies.kubernetes_dnssrv import KubernetesDnsSrvStrategy
from nodemesh.doctor.dns import check_dns
from nodemesh.doctor.result import Status
from support.dns import Dnsmasq, require_dnsmasq

HEADLESS = "chat-nodes.default.svc.cluster.local"
NORMAL = "chat.default.svc.cluster.local"
SRV = "worker-hl.default.svc.cluster.local"
POD_SEARCH = "search default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"


@pytest.fixture
async def dnsmasq(tmp_path: Path) -> AsyncIterator[Dnsmasq]:
    async with Dnsmasq(tmp_path, executable=require_dnsmasq()) as server:
        await server.set_hosts(
            {HEADLESS: ["10.1.0.1", "10.1.0.2", "10.1.0.3"], NORMAL: ["10.96.4.4"]}
        )
        await server.set_srv({SRV: [f"worker-{i}.{SRV}" for i in range(2)]})
        yield server


@pytest.fixture
def resolv_conf(tmp_path: Path) -> str:
    path = tmp_path / "resolv.conf"
    path.write_text(POD_SEARCH)
    return str(path)


def dns_options(server: Dnsmasq, resolv_conf: str) -> dict[str, object]:
    return {"nameservers": (server.nameserver,), "resolv_conf": resolv_conf, "dns_timeout": 2000}


async def test_headless_service_answers_are_counted(dnsmasq: Dnsmasq, resolv_conf: str) -> None:
    """The short service name resolves through the pod's search list to 3 addresses."""
    opts = KubernetesDnsStrategy.Options(
        service="chat-nodes", application_name="chat", **dns_options(dnsmasq, resolv_conf)
    )
    result = await check_dns("kubernetes_dns", opts, {})
    assert result is not None and result.status is Status.PASS
    assert result.detail.startswith(f"{HEADLESS}.: 3 record(s): 10.1.0.1, 10.1.0.2, 10.1.0.3")


async def test_one_address_looks_like_a_normal_service(dnsmasq: Dnsmasq, resolv_conf: str) -> None:
    """One A record for kubernetes_dns is likely a ClusterIP: a warning to go headless."""
    opts = KubernetesDnsStrategy.Options(
        service="chat", application_name="chat", **dns_options(dnsmasq, resolv_conf)
    )
    result = await check_dns("kubernetes_dns", opts, {})
    assert result is not None and result.status is Status.WARN
    assert "clusterIP: None" in result.fix


async def test_missing_service_fails_with_the_headless_service_fix(
    dnsmasq: Dnsmasq, resolv_conf: str
) -> None:
    """A service name that does not exist: FAIL (NXDOMAIN) saying what to create."""
    opts = KubernetesDnsStrategy.Options(
        service="nope", application_name="chat", **dns_options(dnsmasq, resolv_conf)
    )
    result = await check_dns("kubernetes_dns", opts, {})
    assert result is not None and result.status is Status.FAIL
    assert "no such DNS name" in result.detail and "publishNotReadyAddresses" in result.fix


async def test_statefulset_srv_records(dnsmasq: Dnsmasq, resolv_conf: str) -> None:
    """kubernetes_dnssrv's SRV name (libcluster's rule) has one target per pod."""
    opts = KubernetesDnsSrvStrategy.Options(
        service="worker-hl",
        namespace="default",
        application_name="worker",
        **dns_options(dnsmasq, resolv_conf),
    )
    result = await check_dns("kubernetes_dnssrv", opts, {})
    assert result is not None and result.status is Status.PASS
    assert "2 record(s)" in result.detail and f"worker-0.{SRV}" in result.detail


async def test_dns_poll_name_without_records_fails(dnsmasq: Dnsmasq, resolv_conf: str) -> None:
    """DNSPoll on a name with no address: FAIL."""
    opts = DnsPollStrategy.Options(
        query="absent.example", node_basename="app", **dns_options(dnsmasq, resolv_conf)
    )
    result = await check_dns("dns_poll", opts, {})
    assert result is not None and result.status is Status.FAIL


async def test_dead_server_is_not_reported_as_a_missing_name(
    tmp_path: Path, resolv_conf: str
) -> None:
    """No DNS server answering: FAIL pointing at resolv.conf / nameservers, not the name."""
    async with Dnsmasq(tmp_path, executable=require_dnsmasq()) as server:
        opts = KubernetesDnsStrategy.Options(
            service="chat-nodes", application_name="chat", **dns_options(server, resolv_conf)
        )
    result = await check_dns("kubernetes_dns", opts, {})
    assert result is not None and result.status is Status.FAIL
    assert "nameservers" in result.fix


async def test_other_strategies_have_no_dns_check() -> None:
    """Strategies that resolve nothing get no DNS line."""
    assert await check_dns("gossip", object(), {}) is None
