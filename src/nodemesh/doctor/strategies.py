"""Per-topology checks: the names the strategy will connect to match this node's name,
the strategy's prerequisites hold, and one discovery round finds nodes.

A strategy connects ``<basename>@<host>`` names it builds itself (libcluster's rules);
if this node's own name is not of that shape, every peer fails to reach it: a peer dials
``chat@10.0.0.5`` and the handshake finds ``app@10.0.0.5`` (or ``chat@pod-0.svc``) there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nodemesh.cluster.topology import Topology
from nodemesh.dist.names import NodeName, is_ip_literal
from nodemesh.doctor.discovery import discover_once
from nodemesh.doctor.dns import check_dns
from nodemesh.doctor.names import check_name_kinds
from nodemesh.doctor.result import CheckResult

__all__ = ["TopologyReport", "check_naming", "check_topology", "naming_of"]

#: strategy -> (option holding the basename, "ip" or "fqdn": what the host part is)
_NAMING: dict[str, tuple[str, str]] = {
    "kubernetes_dns": ("application_name", "ip"),
    "kubernetes_dnssrv": ("application_name", "fqdn"),
    "dns_poll": ("node_basename", "ip"),
    "rancher": ("node_basename", "ip"),
    "kubernetes": ("kubernetes_node_basename", "ip"),
}


def naming_of(topology: Topology) -> tuple[str, str, str] | None:
    """(option, basename, host kind) of the names ``topology`` builds, or None when its
    strategy connects names it is given (epmd, gossip...)."""
    rule = _NAMING.get(topology.strategy)
    if rule is None:
        return None
    option, kind = rule
    basename = getattr(topology.options, option, None)
    if not isinstance(basename, str):
        return None
    if topology.strategy == "kubernetes" and getattr(topology.options, "mode", "ip") != "ip":
        kind = "fqdn"  # mode dns: a-b-c-d.<ns>.pod.<domain>; hostname: <h>.<svc>.<ns>.svc...
    return option, basename, kind


def check_naming(
    topology: Topology, own: NodeName, basenames: frozenset[str] = frozenset()
) -> list[CheckResult]:
    """Whether peers running this topology would find this node under its own name.

    ``basenames`` are those of all the configured topologies: when another topology
    dials this node's basename, this one connects nodes of another kind (a StatefulSet
    of "b" nodes, say), and a different basename is expected."""
    naming = naming_of(topology)
    if naming is None:
        return []
    option, basename, kind = naming
    check = f"names of topology {topology.name!r}"
    example = f"{basename}@{'10.0.0.5' if kind == 'ip' else 'pod-0.svc.ns.svc.cluster.local'}"
    results: list[CheckResult] = []
    if own.alive != basename and own.alive in basenames:
        results.append(
            CheckResult.ok(check, f"connects the {basename}@... nodes (another kind than {own})")
        )
        return results
    if own.alive != basename:
        results.append(
            CheckResult.fail(
                check,
                f"{topology.strategy} connects {basename}@<host> ({option} = {basename!r}) "
                f"but this node is {own}: peers will not find it",
                f"name the node {basename}@... (NODEMESH_BASENAME={basename} with the "
                f"image's entrypoint), or set {option} = {own.alive!r} on every node",
            )
        )
    if not own.is_long:
        results.append(
            CheckResult.fail(
                check,
                f"{topology.strategy} connects long names such as {example}, but {own} is a "
                "short name: Erlang never connects short and long names",
                f"use a long name: --name {basename}@<IP or FQDN>",
            )
        )
    elif kind == "ip" and not is_ip_literal(own.host):
        results.append(
            CheckResult.fail(
                check,
                f"{topology.strategy} dials peers by IP ({example}) but this node's host is "
                f"{own.host}: a peer dialing {basename}@<this IP> meets {own} and drops it",
                f"name the node {basename}@$POD_IP (the image's entrypoint does)",
            )
        )
    elif kind == "fqdn" and is_ip_literal(own.host):
        results.append(
            CheckResult.fail(
                check,
                f"{topology.strategy} dials peers by DNS name ({example}) but this node's "
                f"host is the IP {own.host}",
                "name the node <basename>@$(POD_NAME).<service>.<namespace>.svc.cluster.local",
            )
        )
    if not results:
        results.append(CheckResult.ok(check, f"peers will dial {own}, this node's own name"))
    return results


@dataclass(slots=True)
class TopologyReport:
    """What the checks of one topology found, and the nodes its discovery listed."""

    results: list[CheckResult] = field(default_factory=list)
    discovered: frozenset[str] = frozenset()


async def check_topology(
    topology: Topology,
    own: NodeName | None,
    *,
    node_name: str,
    epmd_port: int,
    timeout: float,
    wait: float | None,
    environ: Mapping[str, str] | None = None,
    basenames: frozenset[str] = frozenset(),
) -> TopologyReport:
    """Naming, prerequisites and one discovery round for ``topology``."""
    env = os.environ if environ is None else environ
    report = TopologyReport()
    if own is not None:
        report.results += check_naming(topology, own, basenames)
    report.results += await _prerequisites(topology, env, timeout)
    found = await discover_once(
        topology, node_name=node_name, epmd_port=epmd_port, wait=wait, timeout=timeout
    )
    check = f"discovery of topology {topology.name!r} ({topology.strategy})"
    if found.error is not None:
        report.results.append(CheckResult.fail(check, found.error, _discovery_fix(topology)))
        return report
    others = found.nodes - {node_name}
    report.discovered = frozenset(others)
    if not found.nodes:
        heard = f" in {found.listened:g} s" if found.listened is not None else ""
        report.results.append(
            CheckResult.warn(
                check,
                f"found no nodes{heard}",
                "fine for the first node; otherwise see the checks above",
            )
        )
    else:
        shown = ", ".join(sorted(found.nodes)[:5]) + (" ..." if len(found.nodes) > 5 else "")
        report.results.append(CheckResult.ok(check, f"found {len(found.nodes)}: {shown}"))
    if own is not None:
        kinds = check_name_kinds(own, others, f"found by {topology.name!r}")
        if kinds is not None and kinds.status.value == "FAIL":
            report.results.append(kinds)
    return report


async def _prerequisites(
    topology: Topology, env: Mapping[str, str], timeout: float
) -> list[CheckResult]:
    strategy, options = topology.strategy, topology.options
    if strategy == "gossip":
        from nodemesh.doctor.gossip import check_gossip

        return check_gossip(options, dict(env))
    if strategy == "kubernetes":
        from nodemesh.doctor.kubernetes import check_kubernetes

        return await check_kubernetes(options, environ=env, verbs=_verbs(options), timeout=timeout)
    dns_result = await check_dns(strategy, options, env)
    return [] if dns_result is None else [dns_result]


def _verbs(options: Any) -> tuple[str, ...]:
    watch = getattr(options, "kubernetes_watch", True)
    return ("list", "watch") if watch is not False else ("list",)


def _discovery_fix(topology: Topology) -> str:
    fixes = {
        "kubernetes": "the error says what is missing; see the lines above",
        "kubernetes_dns": "the headless Service must exist in this namespace (see DNS above)",
        "kubernetes_dnssrv": "the StatefulSet's headless Service must exist (see DNS above)",
        "dns_poll": "the query must resolve from this host (see DNS above)",
        "rancher": "the Rancher metadata service must answer at http://rancher-metadata",
        "gossip": "see the gossip lines above",
    }
    return fixes.get(topology.strategy, "see the error; `nodemesh discover -v` logs more")
