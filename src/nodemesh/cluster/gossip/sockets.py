"""The gossip UDP socket, set up as libcluster's ``gen_udp:open`` options do, IPv4 or IPv6.

libcluster 3.5 opens ``[ip: if_addr, reuseaddr: true, broadcast: true, multicast_loop:
true, multicast_ttl: TTL, multicast_if: IF, add_membership: {Group, IF or 0.0.0.0}]``, and
with ``broadcast_only`` just ``[ip: if_addr, reuseaddr: true, broadcast: true]``. We add
SO_REUSEPORT (several nodemesh nodes on one host share the port; a libcluster node there
still can, through SO_REUSEADDR) and, on Linux, IP_MULTICAST_ALL = 0, so a socket only
hears the groups it joined itself rather than every group joined on the host at that port.

For IPv6 the group needs an interface: ``multicast_if`` is an interface index, a name
(``"eth0"``) or one of the interface's addresses; unset, the kernel picks by route.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import sys
from dataclasses import dataclass

from nodemesh.errors import NetworkError

__all__ = ["GossipSocket", "answer_group", "open_gossip_socket", "set_membership"]

# Linux <linux/in.h> / <linux/in6.h>; Python's socket module does not export them.
_IP_MULTICAST_ALL = 49
_IPV6_MULTICAST_ALL = 29


@dataclass(frozen=True, slots=True)
class GossipSocket:
    """An open non-blocking socket and where heartbeats go (``sendto`` address)."""

    sock: socket.socket
    destination: tuple[str, int] | tuple[str, int, int, int]


def open_gossip_socket(
    *,
    port: int,
    if_addr: str,
    multicast_addr: str,
    multicast_ttl: int,
    multicast_if: str | int | None,
    broadcast_only: bool,
) -> GossipSocket:
    """Bind and configure the socket; raises :class:`NetworkError` when the OS refuses
    (port taken without SO_REUSEPORT, unknown interface, no route to the group...)."""
    v6 = ipaddress.ip_address(multicast_addr).version == 6
    family = socket.AF_INET6 if v6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if v6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            index = interface_index(multicast_if)
            sock.bind((if_addr, port))
            _join_v6(sock, multicast_addr, index, multicast_ttl)
            return GossipSocket(sock, (multicast_addr, port, 0, index))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind((if_addr, port))
        if not broadcast_only:
            _join_v4(sock, multicast_addr, multicast_if, multicast_ttl)
        return GossipSocket(sock, (multicast_addr, port))
    except OSError as exc:
        sock.close()
        raise NetworkError(
            f"cannot open the gossip socket on {if_addr} port {port} for {multicast_addr} "
            f"(multicast_if {multicast_if!r}): {exc}"
        ) from exc
    except BaseException:
        sock.close()
        raise


def _join_v4(sock: socket.socket, group: str, interface: str | int | None, ttl: int) -> None:
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)
    mreq = _mreq_v4(group, interface)
    if interface is not None:
        # struct in_addr (an address) or struct ip_mreqn (a name or index): both accepted
        value = socket.inet_aton(str(interface)) if _is_ip(interface) else mreq
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, value)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)


def _mreq_v4(group: str, interface: str | int | None) -> bytes:
    if interface is None or _is_ip(interface):
        return socket.inet_aton(group) + socket.inet_aton(str(interface or "0.0.0.0"))
    # an interface name or index: Linux's struct ip_mreqn
    return socket.inet_aton(group) + bytes(4) + struct.pack("@i", interface_index(interface))


def _join_v6(sock: socket.socket, group: str, index: int, hops: int) -> None:
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_MULTICAST_ALL, 0)
    if index:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", index)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)


def answer_group(multicast_addr: str) -> str:
    """The group answers to nodemesh newcomers go to: the gossip group with its last bit
    flipped (233.252.1.32 -> 233.252.1.33), on the same port. Only nodes in their first
    moments join it, so the others do not wake for answers that are not for them."""
    group = ipaddress.ip_address(multicast_addr)
    return str(type(group)(int(group) ^ 1))


def set_membership(
    sock: socket.socket, group: str, multicast_if: str | int | None, *, join: bool
) -> None:
    """Join or leave ``group`` on the interface the gossip group uses. Raises OSError."""
    if ipaddress.ip_address(group).version == 6:
        mreq6 = socket.inet_pton(socket.AF_INET6, group) + struct.pack(
            "@I", interface_index(multicast_if)
        )
        option = socket.IPV6_JOIN_GROUP if join else socket.IPV6_LEAVE_GROUP
        sock.setsockopt(socket.IPPROTO_IPV6, option, mreq6)
        return
    option = socket.IP_ADD_MEMBERSHIP if join else socket.IP_DROP_MEMBERSHIP
    sock.setsockopt(socket.IPPROTO_IP, option, _mreq_v4(group, multicast_if))


def _is_ip(value: str | int) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def interface_index(interface: str | int | None) -> int:
    """The index of an interface given by index, name or (IPv6, Linux) address; 0 for
    None. Raises :class:`NetworkError` when there is no such interface."""
    if interface is None:
        return 0
    if isinstance(interface, int):
        return interface
    if _is_ip(interface):
        return _index_of_address(interface)
    try:
        return socket.if_nametoindex(interface)
    except OSError as exc:
        raise NetworkError(f"no network interface named {interface!r}") from exc


def _index_of_address(address: str) -> int:
    """The interface holding an IPv6 address, from Linux's /proc/net/if_inet6."""
    wanted = ipaddress.ip_address(address)
    with contextlib.suppress(OSError), open("/proc/net/if_inet6") as table:
        for line in table:
            fields = line.split()
            if len(fields) >= 2 and _from_hex(fields[0]) == wanted:
                return int(fields[1], 16)
    raise NetworkError(f"no interface has the address {address} (multicast_if)")


def _from_hex(hex32: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.IPv6Address(int(hex32, 16))
    except ValueError:
        return None
