"""Per topology: the names a strategy dials vs this node's name, and the whole diagnosis
of a small cluster on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh.cluster import Topology
from nodemesh.dist.names import parse_node_name
from nodemesh.doctor import CheckResult, DoctorOptions, Status, diagnose
from nodemesh.doctor.strategies import check_naming, check_topology

DNS = Topology.create(
    "k8s", "kubernetes_dns", {"service": "chat-nodes", "application_name": "chat"}
)
SRV = Topology.create(
    "sts",
    "kubernetes_dnssrv",
    {"service": "worker-hl", "namespace": "default", "application_name": "worker"},
)


def naming(topology: Topology, name: str) -> list[CheckResult]:
    return check_naming(topology, parse_node_name(name))


def test_the_name_peers_dial_passes() -> None:
    """chat@<ip> is what kubernetes_dns dials: PASS."""
    assert [r.status for r in naming(DNS, "chat@10.0.0.5")] == [Status.PASS]


def test_another_basename_is_not_found() -> None:
    """The seed's pitfall: basename != application_name means peers never find the node."""
    (result,) = naming(DNS, "app@10.0.0.5")
    assert result.status is Status.FAIL
    assert "application_name = 'chat'" in result.detail and "NODEMESH_BASENAME=chat" in result.fix


def test_a_short_name_never_meets_the_long_names_dialed() -> None:
    """kubernetes_dns dials long names; a short-name node is unreachable to them."""
    results = naming(DNS, "chat@vm")
    assert [r.status for r in results] == [Status.FAIL]
    assert "short name" in results[0].detail


def test_ip_strategies_need_an_ip_name() -> None:
    """A peer dialing chat@<ip> meets chat@<hostname> and drops it: FAIL."""
    (result,) = naming(DNS, "chat@pod.example.com")
    assert result.status is Status.FAIL and "$POD_IP" in result.fix


def test_srv_strategies_need_a_dns_name() -> None:
    """kubernetes_dnssrv dials pod DNS names, so an IP name fails."""
    (result,) = naming(SRV, "worker@10.0.0.5")
    assert result.status is Status.FAIL and "POD_NAME" in result.fix
    ok = naming(SRV, "worker@worker-0.worker-hl.default.svc.cluster.local")
    assert [r.status for r in ok] == [Status.PASS]


def test_kubernetes_mode_decides_the_host_kind() -> None:
    """The API strategy dials IPs in mode ip and DNS names in mode hostname."""
    base = {"kubernetes_node_basename": "sample", "kubernetes_selector": "app=sample"}
    by_ip = Topology.create("k", "kubernetes", base)
    by_name = Topology.create(
        "k", "kubernetes", {**base, "mode": "hostname", "kubernetes_service_name": "hl"}
    )
    assert [r.status for r in naming(by_ip, "sample@10.0.0.5")] == [Status.PASS]
    assert [r.status for r in naming(by_name, "sample@10.0.0.5")] == [Status.FAIL]


def test_strategies_that_dial_given_names_have_no_naming_rule() -> None:
    """epmd and gossip connect the names they are given: nothing to compare."""
    assert naming(Topology.create("s", "epmd", {"hosts": ["a@h.example"]}), "b@10.0.0.1") == []


async def test_discovered_names_of_the_other_kind_fail() -> None:
    """epmd hosts with long names, this node short: the discovery line and a FAIL."""
    topology = Topology.create("s", "epmd", {"hosts": ["a@10.0.0.1"]})
    report = await check_topology(
        topology,
        parse_node_name("me@vm"),
        node_name="me@vm",
        epmd_port=4369,
        timeout=2,
        wait=None,
        environ={},
    )
    assert [r.status for r in report.results] == [Status.PASS, Status.FAIL]
    assert report.discovered == {"a@10.0.0.1"}


async def collect(opts: DoctorOptions) -> list[CheckResult]:
    return [result async for result in diagnose(opts)]


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path)}


async def test_diagnose_a_healthy_pair(
    make_node: NodeFactory, epmd_port: int, home: dict[str, str]
) -> None:
    """Discovery finds a running peer, the doctor probes it unasked, and nothing FAILs."""
    peer = await make_node("peer")
    opts = DoctorOptions(
        name="doctor@127.0.0.1",
        cookie=COOKIE,
        topologies=[Topology.create("seeds", "epmd", {"hosts": [peer.name]})],
        epmd_port=epmd_port,
        environ=home,
    )
    results = await collect(opts)
    assert not [r for r in results if r.status is Status.FAIL], results
    checks = [r.check for r in results]
    assert f"cookie with {peer.name}" in checks
    assert "discovery of topology 'seeds' (epmd)" in checks


async def test_diagnose_names_each_problem(
    make_node: NodeFactory, epmd_port: int, home: dict[str, str]
) -> None:
    """Wrong cookie and a bad config: each is its own FAIL line with a fix."""
    peer = await make_node("peer")
    opts = DoctorOptions(
        name="doctor@127.0.0.1",
        cookie="wrong",
        peers=[peer.name],
        config_error="topology 'x': unknown option 'servce'",
        epmd_port=epmd_port,
        environ=home,
    )
    failed = {r.check: r for r in await collect(opts) if r.status is Status.FAIL}
    assert set(failed) == {"cluster config", f"cookie with {peer.name}"}
    assert failed[f"cookie with {peer.name}"].detail.startswith("cookies differ")


def test_a_topology_of_another_kind_of_node_is_expected() -> None:
    """A second topology dialing another kind of node (the seed's a and b) is no FAIL."""
    other = Topology.create(
        "b",
        "kubernetes_dnssrv",
        {"service": "worker-b-hl", "namespace": "default", "application_name": "worker-b"},
    )
    own = parse_node_name("worker@worker-0.worker-hl.default.svc.cluster.local")
    (result,) = check_naming(other, own, frozenset({"worker", "worker-b"}))
    assert result.status is Status.PASS and "another kind" in result.detail
    (alone,) = check_naming(other, own)
    assert alone.status is Status.FAIL
