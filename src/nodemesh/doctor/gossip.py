"""Gossip prerequisites: ``multicast_if`` is this host's, a route for the multicast group
exists, and the UDP port can be bound.

Without ``multicast_if`` the kernel sends heartbeats out of the interface its routing
table gives for the group; with no route at all (a network namespace or container with
only a subnet route) sending fails with "Network is unreachable" and nothing is heard.
The tables are read from ``/proc/net/route`` and ``/proc/net/ipv6_route`` (what ``ip
route get`` consults); the parsers take the text, so they are tested on fixed tables.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import Any

from nodemesh.doctor.result import CheckResult
from nodemesh.errors import NetworkError

__all__ = [
    "check_gossip",
    "interface_is_multicast",
    "is_local_interface",
    "route_for",
    "source_address_for",
]

_RTF_UP = 0x1
_IFF_MULTICAST = 0x1000


def route_for(group: str, table_v4: str = "", table_v6: str = "") -> str | None:
    """The interface of the most specific route covering ``group``, or None.

    ``table_v4`` is ``/proc/net/route`` text (addresses in host byte order),
    ``table_v6`` is ``/proc/net/ipv6_route`` text (network order).
    """
    address = ipaddress.ip_address(group)
    best: tuple[int, str] | None = None
    for prefix, iface in _routes(table_v4 if address.version == 4 else table_v6, address.version):
        if address in prefix and (best is None or prefix.prefixlen > best[0]):
            best = (prefix.prefixlen, iface)
    return None if best is None else best[1]


def _routes(table: str, version: int) -> list[tuple[Any, str]]:
    routes: list[tuple[Any, str]] = []
    for line in table.splitlines():
        fields = line.split()
        try:
            if version == 4 and len(fields) >= 8 and fields[0] != "Iface":
                if not int(fields[3], 16) & _RTF_UP:
                    continue
                dest = int(fields[1], 16).to_bytes(4, sys.byteorder)
                mask = int(fields[7], 16).to_bytes(4, sys.byteorder)
                length = bin(int.from_bytes(mask, "big")).count("1")
                net = ipaddress.ip_network((ipaddress.IPv4Address(dest), length), strict=False)
                routes.append((net, fields[0]))
            elif version == 6 and len(fields) == 10:
                if not int(fields[8], 16) & _RTF_UP or fields[9] == "lo":
                    continue
                dest6 = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
                net6 = ipaddress.ip_network((dest6, int(fields[1], 16)), strict=False)
                routes.append((net6, fields[9]))
        except ValueError:
            continue  # a line we do not understand is not a route we can use
    return routes


def interface_is_multicast(iface: str, sys_class_net: Path = Path("/sys/class/net")) -> bool | None:
    """Whether ``iface`` has the MULTICAST flag (None when it cannot be read)."""
    try:
        flags = int((sys_class_net / iface / "flags").read_text().strip(), 16)
    except (OSError, ValueError):
        return None
    return bool(flags & _IFF_MULTICAST)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def check_gossip(options: Any, environ: dict[str, str] | None = None) -> list[CheckResult]:
    """The multicast route (or the broadcast address) and binding the gossip socket."""
    env = dict(os.environ) if environ is None else environ
    interface = _interface_check(options)
    results = [interface or _route_check(options)]
    if interface is not None:  # still check the port, without the interface that failed
        options = dataclasses.replace(options, multicast_if=None)
    results.append(_bind_check(options))
    if env.get("KUBERNETES_SERVICE_HOST"):
        results.append(
            CheckResult.warn(
                "gossip in Kubernetes",
                "most Kubernetes networks do not carry multicast between nodes",
                "use strategy kubernetes_dns (headless service) or kubernetes instead",
            )
        )
    return results


def _interface_check(options: Any) -> CheckResult | None:
    """A FAIL when ``multicast_if`` is not an address, name or index of this host (the
    kernel takes some such values without complaint and heartbeats go nowhere)."""
    interface = options.multicast_if
    if interface is None or options.broadcast_only or is_local_interface(interface):
        return None
    group = str(options.multicast_addr)
    source = source_address_for(group, options.port)
    hint = f" (the route to {group} leaves from {source})" if source else ""
    kind = "an address" if _is_address(interface) else "an interface"
    return CheckResult.fail(
        f"gossip multicast_if {interface}",
        f"{interface!r} is not {kind} of this host: heartbeats cannot be sent from it",
        f"set multicast_if to this host's address on the cluster network{hint}, or leave "
        "it unset to let the routing table choose",
    )


def is_local_interface(interface: str | int) -> bool:
    """Whether ``interface`` is an address (bindable here), name or index of this host."""
    if isinstance(interface, int):
        return interface in {index for index, _ in socket.if_nameindex()}
    if not _is_address(interface):
        return interface in {name for _, name in socket.if_nameindex()}
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((interface, 0))  # EADDRNOTAVAIL: no interface holds it
        except OSError:
            return False
    return True


def source_address_for(group: str, port: int) -> str | None:
    """The local address the kernel picks to send to ``group`` (None without a route):
    connecting a UDP socket only consults the routing table, nothing is sent."""
    family = socket.AF_INET6 if ":" in group else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((group, port))
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return address


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _route_check(options: Any) -> CheckResult:
    group = str(options.multicast_addr)
    check = f"gossip route to {group}"
    if options.broadcast_only:
        return CheckResult.ok(check, "broadcast_only: no multicast route needed")
    if options.multicast_if is not None:
        return CheckResult.ok(check, f"multicast_if {options.multicast_if} picks the interface")
    iface = route_for(group, _read("/proc/net/route"), _read("/proc/net/ipv6_route"))
    if iface is None:
        return CheckResult.fail(
            check,
            f"no route covers {group}: heartbeats cannot be sent",
            "add one (`ip route add 224.0.0.0/4 dev eth0`) or set multicast_if to this "
            "host's address on the cluster network",
        )
    if interface_is_multicast(iface) is False:
        return CheckResult.fail(
            check,
            f"the route goes out of {iface}, which has no MULTICAST flag",
            f"`ip link set {iface} multicast on`, or set multicast_if to another interface",
        )
    return CheckResult.ok(check, f"heartbeats go out of {iface}")


def _bind_check(options: Any) -> CheckResult:
    from nodemesh.cluster.gossip.sockets import open_gossip_socket

    check = f"gossip port {options.port}/udp"
    try:
        opened = open_gossip_socket(
            port=options.port,
            if_addr=options.if_addr,
            multicast_addr=options.multicast_addr,
            multicast_ttl=options.multicast_ttl,
            multicast_if=options.multicast_if,
            broadcast_only=options.broadcast_only,
        )
    except NetworkError as exc:
        return CheckResult.fail(
            check,
            str(exc),
            "free the port (another program holds it without SO_REUSEPORT) or fix "
            "if_addr / multicast_if to an address and interface of this host",
        )
    opened.sock.close()
    return CheckResult.ok(check, f"bound on {options.if_addr} and joined {options.multicast_addr}")
