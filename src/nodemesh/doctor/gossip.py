"""Gossip prerequisites: a route for the multicast group, and the UDP port can be bound.

Without ``multicast_if`` the kernel sends heartbeats out of the interface its routing
table gives for the group; with no route at all (a network namespace or container with
only a subnet route) sending fails with "Network is unreachable" and nothing is heard.
The tables are read from ``/proc/net/route`` and ``/proc/net/ipv6_route`` (what ``ip
route get`` consults); the parsers take the text, so they are tested on fixed tables.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

from nodemesh.doctor.result import CheckResult
from nodemesh.errors import NetworkError

__all__ = ["check_gossip", "interface_is_multicast", "route_for"]

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
    results = [_route_check(options)]
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
