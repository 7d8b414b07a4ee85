"""Kubernetes.DNS: the pods behind a headless Service, from its A (and AAAA) records.

As libcluster's ``Cluster.Strategy.Kubernetes.DNS``: each round looks up ``service``
(a headless Service, ``clusterIP: None``, whose name resolves to one address per ready
pod) and connects ``<application_name>@<ip>`` for each address. The name goes through
resolv.conf's search list, so ``myapp-headless`` finds
``myapp-headless.<namespace>.svc.cluster.local`` inside a pod.

Better than libcluster: IPv6 (``address_family``, default ``"auto"``: A records, and AAAA
records when the name has no A record, so an IPv6-only cluster works and a dual-stack one
gets the same names as libcluster); a failed lookup keeps the last list (libcluster
disconnects everything), so a truncated answer that cannot be completed over TCP prunes
nothing (see :mod:`~.dns_base`).
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

__all__ = ["KubernetesDnsStrategy"]


class KubernetesDnsStrategy(DnsPollingStrategy):
    """Connect ``application_name@<ip>`` for each address of the headless ``service``."""

    name = "kubernetes_dns"

    @dataclass(frozen=True, slots=True)
    class Options:
        """libcluster's ``service``, ``application_name``, ``polling_interval`` (ms);
        nodemesh's ``address_family`` and the DNS options of :mod:`~.dns_base`."""

        service: str
        application_name: str
        polling_interval: int = 5000
        address_family: Family = "auto"
        nameservers: tuple[str, ...] = ()
        resolv_conf: str = DEFAULT_RESOLV_CONF
        dns_timeout: int = 5000

        def __post_init__(self) -> None:
            check_text("service", self.service)
            check_basename("application_name", self.application_name)
            check_dns_options(self)

    options: Options

    async def discover(self) -> Set[str]:
        opts = self.options
        found = await self.resolver().addresses(opts.service, opts.address_family)
        return node_names(opts.application_name, found.records)
