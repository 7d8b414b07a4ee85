"""Gossip prerequisites: the multicast route (from routing-table text) and the port."""

from __future__ import annotations

import socket
from pathlib import Path

from nodemesh.cluster.gossip.options import GossipOptions
from nodemesh.doctor.gossip import (
    check_gossip,
    interface_is_multicast,
    is_local_interface,
    route_for,
)
from nodemesh.doctor.result import Status
from support.gossip_node import free_udp_port

# /proc/net/route and /proc/net/ipv6_route of a container with a default route via eth0.
ROUTE_V4 = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)
# A namespace with only its subnet route: 233.252.1.32 is not covered.
SUBNET_ONLY = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "veth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
)
# The fix `ip route add 224.0.0.0/4 dev veth0` adds this line.
MULTICAST_ROUTE = "veth0\t000000E0\t00000000\t0001\t0\t0\t0\t000000F0\t0\t0\t0\n"
ROUTE_V6 = (
    "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
    "ff000000000000000000000000000000 08 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0\n"
)


def test_default_route_covers_the_group() -> None:
    """A default route carries 233.252.1.32 (the most specific route wins)."""
    assert route_for("233.252.1.32", ROUTE_V4) == "eth0"


def test_subnet_only_namespace_has_no_route_until_one_is_added() -> None:
    """Only a subnet route: no route for the group; the suggested route adds one."""
    assert route_for("233.252.1.32", SUBNET_ONLY) is None
    assert route_for("233.252.1.32", SUBNET_ONLY + MULTICAST_ROUTE) == "veth0"


def test_ipv6_group_uses_the_ff00_route() -> None:
    """An IPv6 group is looked up in the IPv6 table."""
    assert route_for("ff12::1234", "", ROUTE_V6) == "eth0"
    assert route_for("ff12::1234", ROUTE_V4, "") is None


def test_interface_flags(tmp_path: Path) -> None:
    """The MULTICAST flag is read from sysfs; an unknown interface is None."""
    (tmp_path / "eth0").mkdir()
    (tmp_path / "eth0" / "flags").write_text("0x1003\n")
    (tmp_path / "tun0").mkdir()
    (tmp_path / "tun0" / "flags").write_text("0x10d1\n")
    (tmp_path / "wg0").mkdir()
    (tmp_path / "wg0" / "flags").write_text("0x91\n")
    assert interface_is_multicast("eth0", tmp_path) is True
    assert interface_is_multicast("wg0", tmp_path) is False
    assert interface_is_multicast("nope", tmp_path) is None


def test_port_binds_on_loopback() -> None:
    """A free port on loopback binds and joins the group: both checks pass."""
    options = GossipOptions(port=free_udp_port(), multicast_if="127.0.0.1")
    results = check_gossip(options, {})
    assert [r.status for r in results] == [Status.PASS, Status.PASS]


def test_port_held_without_reuseport_fails() -> None:
    """Another program holding the port (no SO_REUSEPORT): FAIL with what to do."""
    port = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("0.0.0.0", port))
        results = check_gossip(GossipOptions(port=port, multicast_if="127.0.0.1"), {})
    assert results[1].status is Status.FAIL and "free the port" in results[1].fix


def test_gossip_in_kubernetes_warns() -> None:
    """Gossip inside Kubernetes warns and suggests kubernetes_dns."""
    options = GossipOptions(port=free_udp_port(), multicast_if="127.0.0.1")
    results = check_gossip(options, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    assert results[-1].status is Status.WARN and "kubernetes_dns" in results[-1].fix


def test_multicast_if_of_another_host_fails_with_the_fix() -> None:
    """A multicast_if no interface here holds: FAIL naming it, and the port still checked."""
    address = "203.0.113.254"  # TEST-NET-3: documentation only, on no host
    assert not is_local_interface(address)
    options = GossipOptions(port=free_udp_port(), multicast_if=address)
    results = check_gossip(options, {})
    assert results[0].status is Status.FAIL
    assert (
        results[0].detail
        == f"{address!r} is not an address of this host: heartbeats cannot be sent from it"
    )
    assert results[0].fix.startswith("set multicast_if to this host's address")
    assert results[1].status is Status.PASS  # the port binds without that interface


def test_multicast_if_names_and_indexes_of_this_host() -> None:
    """Loopback's address, name and index are this host's; an unknown name is not."""
    index, name = socket.if_nameindex()[0]
    assert is_local_interface("127.0.0.1") and is_local_interface(name)
    assert is_local_interface(index)
    assert not is_local_interface("nodemesh-no-such-if")
    results = check_gossip(GossipOptions(port=free_udp_port(), multicast_if="nodemesh-no"), {})
    assert results[0].status is Status.FAIL and "not an interface" in results[0].detail
