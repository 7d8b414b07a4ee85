"""What the DNS strategies share: option checks, node names, the resolver.

The options every DNS strategy has besides libcluster's (all optional):

- ``nameservers`` [resolv.conf's]: servers to ask instead, ``"10.96.0.10"`` or
  ``"127.0.0.1:5353"``; resolv.conf's ``search`` and ``ndots`` still apply;
- ``resolv_conf`` ["/etc/resolv.conf"]: where the search domains, ndots and nameservers
  come from;
- ``dns_timeout`` [5000]: ms one query waits for one server (a lookup gives up after
  this times the number of servers).

A partial answer never prunes: a truncated answer whose retry over TCP fails (a path that
lets only UDP port 53 through) is a failed lookup, a
:class:`~nodemesh.errors.DiscoveryError`, and the cluster runner keeps its last good list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nodemesh.cluster.dns import Resolver, parse_nameserver
from nodemesh.cluster.strategy import PollingStrategy
from nodemesh.dist.names import parse_node_name
from nodemesh.errors import ConfigError, NodeNameError

__all__ = ["DnsPollingStrategy", "check_basename", "check_dns_options", "check_text", "node_names"]


def check_text(option: str, value: str) -> None:
    """A required option that must be a non-empty string."""
    if not value.strip():
        raise ConfigError(f"option {option!r} must not be empty")


def check_basename(option: str, value: str) -> None:
    """The part before ``@`` of the node names: Erlang's alive-name rules."""
    try:
        parse_node_name(f"{value}@host.invalid")
    except NodeNameError:
        raise ConfigError(
            f"option {option!r} must be a node basename (letters, digits, '_' and '-', "
            f"the part before '@'), got {value!r}"
        ) from None


def check_dns_options(options: Any) -> None:
    """Ranges of ``polling_interval``, ``dns_timeout`` and the ``nameservers``."""
    for option in ("polling_interval", "dns_timeout"):
        value = getattr(options, option)
        if value <= 0:
            raise ConfigError(f"option {option!r} must be a positive number of ms, got {value}")
    for server in options.nameservers:
        try:
            parse_nameserver(server)
        except ConfigError as exc:
            raise ConfigError(f"option 'nameservers': {exc}") from None


def node_names(basename: str, hosts: Iterable[str]) -> frozenset[str]:
    """``basename@host`` for each host that makes a valid node name."""
    found: set[str] = set()
    for host in hosts:
        try:
            found.add(str(parse_node_name(f"{basename}@{host}")))
        except NodeNameError:
            continue  # e.g. an SRV target with a space; Erlang could not connect it either
    return frozenset(found)


class DnsPollingStrategy(PollingStrategy):
    """A polling strategy that asks DNS; subclasses implement ``discover``."""

    _resolver: Resolver | None = None

    def resolver(self) -> Resolver:
        """The resolver built from the options (on first use)."""
        if self._resolver is None:
            opts = self.options
            self._resolver = Resolver(
                opts.nameservers, timeout=opts.dns_timeout / 1000, resolv_conf=opts.resolv_conf
            )
        return self._resolver
