"""The gossip topology's options: libcluster's names and defaults, and nodemesh's additions.

Checked on construction, so a bad configuration fails when the topology is built, before
anything starts; :func:`make_codec` then picks the wire codec they ask for.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields

from nodemesh.cluster.gossip.wire import (
    MIN_KEY_BYTES,
    AuthenticatedCodec,
    Codec,
    PlainCodec,
    SecretCodec,
)
from nodemesh.errors import ConfigError

__all__ = ["GossipOptions", "make_codec"]


@dataclass(frozen=True, slots=True)
class GossipOptions:
    """The gossip topology's ``config``. Durations are in milliseconds, libcluster's unit.

    The first seven are libcluster's, with its names and defaults. The rest are nodemesh's:
    ``auth_keys`` (non-empty: authenticated mode; the first key seals, all open),
    ``cluster_label``, ``replay_window``, the heartbeat interval range, the newcomer
    ``reply_interval``, ``connect_defer``, ``liveness_timeout`` and the bounds. Raises
    :class:`ConfigError`
    naming the option when a value is of the wrong type or out of range.
    """

    port: int = 45892
    if_addr: str = "0.0.0.0"
    multicast_addr: str = "233.252.1.32"
    multicast_ttl: int = 1
    multicast_if: str | int | None = None
    broadcast_only: bool = False
    secret: str | None = None
    auth_keys: tuple[str, ...] = ()
    cluster_label: str = ""
    replay_window: int = 30_000
    heartbeat_interval_min: int = 1
    heartbeat_interval_max: int = 5_000
    reply_interval: int = 50
    connect_defer: int = 500
    liveness_timeout: int = 15_000
    max_tracked_nodes: int = 1024
    max_packet_size: int = 8192
    max_concurrent_connects: int = 16
    drop_log_interval: int = 10_000

    def __post_init__(self) -> None:
        _check_types(self)
        _check_range("port", self.port, 1, 65535)
        _check_range("multicast_ttl", self.multicast_ttl, 0, 255)
        for name in ("replay_window", "heartbeat_interval_min", "reply_interval"):
            _check_range(name, getattr(self, name), 1, 3_600_000)
        _check_range(
            "heartbeat_interval_max", self.heartbeat_interval_max, self.heartbeat_interval_min,
            3_600_000,
        )  # fmt: skip
        _check_range("connect_defer", self.connect_defer, 0, 3_600_000)
        _check_range("liveness_timeout", self.liveness_timeout, 1, 86_400_000)
        _check_range("drop_log_interval", self.drop_log_interval, 0, 86_400_000)
        _check_range("max_tracked_nodes", self.max_tracked_nodes, 1, 1_000_000)
        _check_range("max_packet_size", self.max_packet_size, 64, 65_507)
        _check_range("max_concurrent_connects", self.max_concurrent_connects, 1, 10_000)
        _check_addresses(self)
        if self.secret is not None and self.auth_keys:
            raise ConfigError("gossip options 'secret' and 'auth_keys' exclude each other")
        if self.cluster_label and not self.auth_keys:
            raise ConfigError("gossip option 'cluster_label' needs 'auth_keys'")
        if self.secret == "":
            raise ConfigError("gossip option 'secret' must not be empty")
        if any(len(key.encode("utf-8")) < MIN_KEY_BYTES for key in self.auth_keys):
            raise ConfigError(f"gossip option 'auth_keys': each key needs {MIN_KEY_BYTES}+ bytes")

    @property
    def ipv6(self) -> bool:
        """Whether the group (and so the socket) is IPv6."""
        return ipaddress.ip_address(self.multicast_addr).version == 6


_TYPES: dict[str, tuple[type, ...]] = {
    "if_addr": (str,),
    "multicast_addr": (str,),
    "multicast_if": (str, int, type(None)),
    "broadcast_only": (bool,),
    "secret": (str, type(None)),
    "cluster_label": (str,),
}


def _check_types(options: GossipOptions) -> None:
    keys = options.auth_keys
    if isinstance(keys, list | tuple) and all(isinstance(k, str) for k in keys):
        object.__setattr__(options, "auth_keys", tuple(keys))  # TOML gives a list
    else:
        raise ConfigError(f"gossip option 'auth_keys' must be a list of strings, got {keys!r}")
    for f in fields(options):
        value = getattr(options, f.name)
        allowed = _TYPES.get(f.name, (int,) if f.name != "auth_keys" else (tuple,))
        bad_bool = isinstance(value, bool) and bool not in allowed
        if bad_bool or not isinstance(value, allowed):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
            raise ConfigError(f"gossip option {f.name!r} must be {names}, got {value!r}")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"gossip option {name!r} must be in {low}..{high}, got {value}")


def _check_addresses(options: GossipOptions) -> None:
    try:
        group = ipaddress.ip_address(options.multicast_addr)
    except ValueError:
        raise ConfigError(
            f"gossip option 'multicast_addr' must be an IP address, got {options.multicast_addr!r}"
        ) from None
    try:
        local = ipaddress.ip_address(options.if_addr)
    except ValueError:
        raise ConfigError(
            f"gossip option 'if_addr' must be an IP address, got {options.if_addr!r}"
        ) from None
    if group.version == 6 and options.if_addr == "0.0.0.0":
        object.__setattr__(options, "if_addr", "::")  # the default, read as "any address"
    elif local.version != group.version:
        raise ConfigError("gossip options 'if_addr' and 'multicast_addr' mix IPv4 and IPv6")
    if options.broadcast_only and group.version == 6:
        raise ConfigError(
            "gossip option 'broadcast_only' needs an IPv4 address (no IPv6 broadcast)"
        )
    if not options.broadcast_only and not group.is_multicast:
        raise ConfigError(
            f"gossip option 'multicast_addr' {group} is not a multicast address "
            "(set broadcast_only = true to send to a broadcast address)"
        )
    interface = options.multicast_if
    version = _ip_version(interface) if isinstance(interface, str) else None
    if version is not None and version != group.version:
        raise ConfigError(
            f"gossip option 'multicast_if' {interface} is an IPv{version} address "
            f"for an IPv{group.version} group"
        )


def _ip_version(text: str) -> int | None:
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None  # an interface name


def make_codec(options: GossipOptions) -> Codec:
    """The wire codec the options ask for: plain, libcluster's secret, or authenticated."""
    if options.auth_keys:
        return AuthenticatedCodec(
            options.auth_keys,
            options.cluster_label,
            window=options.replay_window / 1000,
            max_senders=options.max_tracked_nodes,
            max_packet_size=options.max_packet_size,
        )
    if options.secret is not None:
        return SecretCodec(options.secret, max_packet_size=options.max_packet_size)
    return PlainCodec(max_packet_size=options.max_packet_size, max_cached=options.max_tracked_nodes)
