"""Kubernetes.DNSSRV: a StatefulSet's pods by their stable names, from SRV records.

As libcluster's ``Cluster.Strategy.Kubernetes.DNSSRV``: each round asks for the SRV
records of ``<service>.<namespace>.svc.<$CLUSTER_DOMAIN, else "cluster.local.">`` — the
headless Service that governs the StatefulSet — and connects
``<application_name>@<target>`` for each record, the target without its final dot:
``app@myapp-0.myapp.default.svc.cluster.local``. Those names survive pod restarts (the
pod's IP changes, its name does not). Set ``CLUSTER_DOMAIN`` with a final dot
(``"example.local."``) for an absolute name; without one the name goes through
resolv.conf's search list, as with Erlang's ``inet_res``.

Better than libcluster: a failed lookup keeps the last list (libcluster disconnects
everything), so a truncated answer that cannot be completed over TCP prunes nothing (see
:mod:`~.dns_base`); SRV records whose target is ``.`` ("no service", RFC 2782) are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Set
from dataclasses import dataclass

from nodemesh.cluster.dns import DEFAULT_RESOLV_CONF
from nodemesh.cluster.strategies.dns_base import (
    DnsPollingStrategy,
    check_basename,
    check_dns_options,
    check_text,
    node_names,
)

__all__ = ["KubernetesDnsSrvStrategy", "srv_name"]


def srv_name(service: str, namespace: str, environ: Mapping[str, str] = os.environ) -> str:
    """The name libcluster asks for: ``<service>.<namespace>.svc.<cluster domain>``."""
    return f"{service}.{namespace}.svc.{environ.get('CLUSTER_DOMAIN', 'cluster.local.')}"


class KubernetesDnsSrvStrategy(DnsPollingStrategy):
    """Connect ``application_name@<target>`` for each SRV record of the service."""

    name = "kubernetes_dnssrv"

    @dataclass(frozen=True, slots=True)
    class Options:
        """libcluster's ``service``, ``namespace``, ``application_name``,
        ``polling_interval`` (ms); the DNS options of :mod:`~.dns_base`."""

        service: str
        namespace: str
        application_name: str
        polling_interval: int = 5000
        nameservers: tuple[str, ...] = ()
        resolv_conf: str = DEFAULT_RESOLV_CONF
        dns_timeout: int = 5000

        def __post_init__(self) -> None:
            check_text("service", self.service)
            check_text("namespace", self.namespace)
            check_basename("application_name", self.application_name)
            check_dns_options(self)

    options: Options

    async def discover(self) -> Set[str]:
        opts = self.options
        # CLUSTER_DOMAIN is read each round, as libcluster reads it.
        found = await self.resolver().srv_targets(srv_name(opts.service, opts.namespace))
        return node_names(opts.application_name, found.records)
