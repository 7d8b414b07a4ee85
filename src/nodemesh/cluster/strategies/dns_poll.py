"""DNSPoll: every address a DNS name resolves to is a node.

As libcluster's ``Cluster.Strategy.DNSPoll``: each round looks up the A and AAAA records
of ``query`` and connects ``<node_basename>@<ip>``, IPv6 addresses printed plainly as
Erlang prints them (``app@fd00::1``). Any name works: a Docker Compose or Swarm service
(``tasks.myapp``), a Rancher service, Fly.io's ``<app>.internal``, a round-robin record.

Better than libcluster: ``address_family`` narrows the records asked for (default
``"any"``: A and AAAA, as libcluster); a failed lookup keeps the last list, so a
truncated answer that cannot be completed over TCP prunes nothing (see :mod:`~.dns_base`).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from nodemesh.cluster.dns import DEFAULT_RESOLV_CONF, Family
from nodemesh.cluster.strategies.dns_base import (
    DnsPollingStrategy,
    check_basename,
    check_dns_options,
    check_text,
    node_names,
)

__all__ = ["DnsPollStrategy"]


class DnsPollStrategy(DnsPollingStrategy):
    """Connect ``node_basename@<ip>`` for each address of ``query``."""

    name = "dns_poll"

    @dataclass(frozen=True, slots=True)
    class Options:
        """libcluster's ``query``, ``node_basename``, ``polling_interval`` (ms);
        nodemesh's ``address_family`` and the DNS options of :mod:`~.dns_base`."""

        query: str
        node_basename: str
        polling_interval: int = 5000
        address_family: Family = "any"
        nameservers: tuple[str, ...] = ()
        resolv_conf: str = DEFAULT_RESOLV_CONF
        dns_timeout: int = 5000

        def __post_init__(self) -> None:
            check_text("query", self.query)
            check_basename("node_basename", self.node_basename)
            check_dns_options(self)

    options: Options

    async def discover(self) -> Set[str]:
        opts = self.options
        found = await self.resolver().addresses(opts.query, opts.address_family)
        return node_names(opts.node_basename, found.records)
