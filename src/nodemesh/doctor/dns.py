"""DNS prerequisites of the DNS strategies: does the query resolve, and to how many records.

The lookups go through the strategies' own resolver (:class:`nodemesh.cluster.dns.Resolver`,
built from the topology's ``nameservers``, ``resolv_conf`` and ``dns_timeout``), so the
doctor asks exactly what the strategy asks: Kubernetes.DNS the A/AAAA records of
``service`` through the search list, Kubernetes.DNSSRV the SRV records of
``<service>.<namespace>.svc.<$CLUSTER_DOMAIN or cluster.local.>``, DNSPoll ``query``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from nodemesh.doctor.result import CheckResult
from nodemesh.errors import DiscoveryError

__all__ = ["DNS_STRATEGIES", "check_dns", "dns_query_of"]

DNS_STRATEGIES = ("kubernetes_dns", "kubernetes_dnssrv", "dns_poll")


def dns_query_of(
    strategy: str, options: Any, environ: Mapping[str, str] | None = None
) -> tuple[str, tuple[str, ...]] | None:
    """The (name, record types) a DNS strategy looks up, or None for other strategies."""
    env = os.environ if environ is None else environ
    if strategy == "kubernetes_dns":
        return str(options.service), ("A", "AAAA")
    if strategy == "kubernetes_dnssrv":
        from nodemesh.cluster.strategies.kubernetes_dnssrv import srv_name

        return srv_name(str(options.service), str(options.namespace), env), ("SRV",)
    if strategy == "dns_poll":
        return str(options.query), ("A", "AAAA")
    return None


async def check_dns(
    strategy: str, options: Any, environ: Mapping[str, str] | None = None
) -> CheckResult | None:
    """Resolve what ``strategy`` resolves: PASS with the record count, FAIL when the name
    does not exist, has no such records or no server answers. None for other strategies."""
    from nodemesh.cluster.dns import DEFAULT_RESOLV_CONF, Resolver

    query = dns_query_of(strategy, options, environ)
    if query is None:
        return None
    qname, rdtypes = query
    check = f"DNS {qname} ({'/'.join(rdtypes)})"
    resolver = Resolver(
        getattr(options, "nameservers", ()),
        timeout=getattr(options, "dns_timeout", 5000) / 1000,
        resolv_conf=getattr(options, "resolv_conf", DEFAULT_RESOLV_CONF),
    )
    records: list[str] = []
    answered = qname
    try:
        for rdtype in rdtypes:
            found = await resolver.lookup(qname, rdtype)
            records += found.records
            answered = found.name
    except DiscoveryError as exc:
        fix = _fix_missing(strategy) if "no such DNS name" in str(exc) else _fix_server()
        return CheckResult.fail(check, str(exc), fix)
    if not records:
        return CheckResult.fail(
            check,
            f"{answered} exists but has no {'/'.join(rdtypes)} records",
            _fix_missing(strategy),
        )
    shown = ", ".join(sorted(records)[:5]) + (" ..." if len(records) > 5 else "")
    detail = f"{answered}: {len(records)} record(s): {shown}"
    if strategy == "kubernetes_dns" and len(records) == 1:
        return CheckResult.warn(
            check,
            detail + " (one address may be a normal Service's virtual IP)",
            "make the Service headless (clusterIP: None) so that DNS lists every pod",
        )
    return CheckResult.ok(check, detail)


def _fix_missing(strategy: str) -> str:
    if strategy in ("kubernetes_dns", "kubernetes_dnssrv"):
        return (
            "create the headless Service (clusterIP: None, publishNotReadyAddresses: true) "
            "in this namespace with a selector that matches the pods"
        )
    return "check the name from this host: `getent hosts NAME` or `dig NAME`"


def _fix_server() -> str:
    return "check /etc/resolv.conf (or the option 'nameservers') and that the server answers"
